// Runs inside raw piscina's threads (the `piscina` variant, the baseline): piscina calls the default export.
import { hashPassword } from './hash.js';

export default hashPassword;
