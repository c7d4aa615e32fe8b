/**
 * The agents of the inbox demo: each one submits tasks back to back with `fetchWithRetry`,
 * which honours the inbox's `503` + `Retry-After` (waiting at least that long, plus jitter)
 * within a shared `RetryBudget`; a task the inbox still refuses after that is given up, and the
 * agent backs off (the last Retry-After, jittered) before its next one. Every answer is counted,
 * every 503 is checked for a Retry-After.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { RetryBudget } from "../src/flow/index.js";
import { fetchWithRetry, RetryableResponseError } from "../src/http/index.js";

/** What the agents saw, all together. */
export interface AgentTally {
  /** Task ids the inbox accepted (202). */
  readonly acceptedIds: string[];
  /** 503 answers seen, retried or final. */
  unavailable: number;
  /** 503 answers without a valid Retry-After (must stay 0). */
  withoutRetryAfter: number;
  /** Tasks given up after the retries (the last answer was a 503). */
  gaveUp: number;
  /** Requests that failed at the network level. */
  errors: number;
}

/** Most task ids remembered (the run is bounded in time; this bounds it in memory too). */
const MAX_IDS = 1_000_000;

function checkRetryAfter(res: Response, tally: AgentTally): number {
  tally.unavailable++;
  const v = res.headers.get("retry-after");
  const s = v !== null && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(s >= 1)) tally.withoutRetryAfter++;
  return Number.isFinite(s) ? s : 1;
}

/**
 * Runs `agents` agents against `url` until `stop` aborts: each then finishes the task it is
 * submitting (so no 202 is lost in flight) and stops; `signal` (an interrupt) aborts at once.
 * Resolves once they all stopped.
 */
export async function runAgents(url: string, agents: number, stop: AbortSignal, signal: AbortSignal, tally: AgentTally): Promise<void> {
  const budget = new RetryBudget({ ratio: 0.5, minPerSecond: agents, name: "agents" });
  const one = async (agent: number): Promise<void> => {
    let n = 0;
    while (!stop.aborted && !signal.aborted) {
      const body = JSON.stringify({ agent, task: ++n, prompt: "summarise the inbox" });
      let res: Response;
      try {
        res = await fetchWithRetry(
          `${url}/tasks`,
          { method: "POST", body, headers: { "content-type": "application/json" }, signal },
          {
            attempts: 4,
            baseMs: 200,
            maxMs: 10_000,
            budget,
            onRetry: (e) => {
              if (e.error instanceof RetryableResponseError) checkRetryAfter(e.error.response, tally);
            },
          },
        );
      } catch {
        if (signal.aborted) return;
        tally.errors++;
        continue;
      }
      if (res.status === 202) {
        const { id } = (await res.json()) as { id: string };
        if (tally.acceptedIds.length < MAX_IDS) tally.acceptedIds.push(id);
      } else if (res.status === 503) {
        const seconds = checkRetryAfter(res, tally);
        await res.body?.cancel();
        tally.gaveUp++;
        // Back off before the next task: the server's hint, with jitter.
        await sleep(seconds * 1000 * (1 + Math.random() * 0.5), undefined, { signal: AbortSignal.any([stop, signal]) }).catch(() => {});
      } else {
        await res.body?.cancel();
        tally.errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: agents }, (_, i) => one(i)));
}
