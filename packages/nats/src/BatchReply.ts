import type { Msg } from '@nats-io/transport-node';
import { headers } from '@nats-io/transport-node';
import { encodeFramed, replyEntry, STATUS_BATCH } from './batchEnvelope.js';
import { STATUS_OK, WireHeaders } from './wireHeaders.js';

// Room in a reply for its headers and the descriptor's punctuation.
const HEADROOM = 512;

/**
 * The replies of one batch request a node took: outcomes are gathered as calls settle and leave in chunks
 * — all those that settled in one turn of the event loop together, in one reply message (or more, each
 * within the connection's `max_payload`) — so the first results reach the caller while later calls still
 * run. The node flushes every batch's chunk at the end of the turn in one go, so they leave in one socket
 * write. Also watches the calls' deadlines: past one, `expire` answers that call (`TIMEOUT`) at once.
 * @internal
 */
export class BatchReply {
  /** Largest outcome one reply can carry, in bytes: a bigger one must be replaced by a short error. */
  readonly maxPart: number;
  /** Largest reply body. */
  private readonly budget: number;
  private entries: string[] = [];
  private parts: Uint8Array[] = [];
  private bytes = 0;
  private readonly answered: Uint8Array;
  private answeredCount = 0;
  /** Each call's deadline (`performance.now()`), 0 for none, and the ms it was given. */
  private readonly deadlines: Float64Array;
  private readonly timeouts: Uint32Array;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly msg: Msg,
    /** The `Cqrs-Codec` of the replies. */
    private readonly codecHeader: string,
    size: number,
    maxPayload: number,
    /** Called when call `index` is past its deadline (`timeoutMs` after it came) and not answered yet. */
    private readonly expire: (index: number, timeoutMs: number) => void,
    /** Outcomes wait to be sent: `flush` is due at the end of this turn (the node flushes all batches at once). */
    private readonly due: (reply: BatchReply) => void,
  ) {
    this.budget = maxPayload - HEADROOM;
    // One outcome alone: its entry (at most 32 bytes) and the descriptor's brackets and line feed.
    this.maxPart = Math.max(0, this.budget - 35);
    this.answered = new Uint8Array(size);
    this.deadlines = new Float64Array(size);
    this.timeouts = new Uint32Array(size);
  }

  /** Whether call `index` has its outcome (its result, its error, or `TIMEOUT` at its deadline). */
  isAnswered(index: number): boolean {
    return this.answered[index] === 1;
  }

  /** Call `index` must be answered within `timeoutMs` from now. */
  watch(index: number, timeoutMs: number): void {
    const at = performance.now() + timeoutMs;
    this.deadlines[index] = at;
    this.timeouts[index] = timeoutMs;
    if (at < this.timerAt) this.arm(at);
  }

  /** The outcome of call `index` (its body as a single call's reply body would be); sent this turn. */
  add(index: number, status: string, body: Uint8Array): void {
    if (this.answered[index] === 1) return;
    this.answered[index] = 1;
    this.answeredCount++;
    if (this.answeredCount === this.answered.length && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const entry = replyEntry(index, status === STATUS_OK ? 'ok' : 'error', body.byteLength);
    const size = entry.length + 1 + body.byteLength;
    if (this.parts.length > 0 && this.bytes + 3 + size > this.budget) this.send();
    this.entries.push(entry);
    this.parts.push(body);
    this.bytes += size;
    if (this.parts.length === 1) this.due(this);
  }

  /** Sends what is gathered now. */
  flush(): void {
    if (this.parts.length > 0) this.send();
  }

  private send(): void {
    const body = encodeFramed(this.entries, this.parts);
    this.entries = [];
    this.parts = [];
    this.bytes = 0;
    const h = headers();
    h.set(WireHeaders.STATUS, STATUS_BATCH);
    h.set(WireHeaders.CODEC, this.codecHeader);
    try {
      this.msg.respond(body, { headers: h });
    } catch {
      // The connection is closed: the caller's timeout (or its connection's loss) ends its wait.
    }
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.onTimer, Math.max(0, Math.ceil(at - performance.now())));
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.deadlines.length; i++) {
      const at = this.deadlines[i] as number;
      if (at === 0 || this.answered[i] === 1) continue;
      if (at <= now) this.expire(i, this.timeouts[i] as number);
      else if (at < next) next = at;
    }
    if (next !== Number.POSITIVE_INFINITY && this.answeredCount < this.answered.length) this.arm(next);
  };
}
