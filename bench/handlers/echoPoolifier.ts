import { ThreadWorker } from 'poolifier';

/** The echo task for poolifier, which runs the function its worker module registers. */
export default new ThreadWorker((input: unknown) => input);
