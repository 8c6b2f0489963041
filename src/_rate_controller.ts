/**
 * The decisions behind the adaptive rate: which 429s mean the quota is spent, how far to slow
 * down, when to pause everyone and how to climb back. Pure: time comes in as arguments.
 * @module
 */
import type { FailureInfo } from "./errors.ts";

/** Window over which the rate the provider admitted is measured, ms. */
export const ADMITTED_WINDOW_MS = 1000;
/** After a slow-down, no other for this long (and never for 429s sent before it). */
export const SLOWDOWN_COOLDOWN_MS = 1000;
/**
 * A quota estimate older than this no longer slows the climb back, ms. Long enough for the slow
 * probe near it (0.5 % a second from 97 %: 6 s) to reach the edge again before a fast climb
 * overshoots it.
 */
export const ESTIMATE_TTL_MS = 30_000;
/** A pace learned from fixed windows holds this long after the last spent window, ms. */
export const PACE_TTL_MS = 30_000;
/** 429s in a row, with no success between, that make a quota signal when none says so. */
export const STRAY_RUN = 3;
/** Share of the last second's answers that, when 429s that say nothing, is a quota signal. */
export const STRAY_SHARE = 0.25;
/** Share of 429s among the last second's answers at which the rate stops climbing. */
export const HOLD_SHARE = 0.03;
/**
 * Once a quota signal was seen, the share of the last second's answers that, when 429s that say
 * nothing, is another: the quota's 429s are known to name nothing.
 */
export const KNOWN_STRAY_SHARE = 0.05;
/**
 * Share of the rate the provider admitted at a signal above which the signal is the edge of the
 * quota, just crossed (not a rate far above it): the slow-down is then {@linkcode EDGE_CUT}.
 */
export const EDGE_ADMITTED = 0.9;
/** Slow-down at the edge of the quota: to this share of the rate. */
export const EDGE_CUT = 0.97;
/**
 * A hint this short, on a 429 that says the quota is spent, is exact (the time until a sliding
 * window's next slot frees, not a rounded `retry-after: 1`): everyone waits for it, ms. Longer
 * ones are left to the refused request (a fixed window's first refusals slow down first).
 */
export const EXACT_HINT_MS = 250;
/** How often `"auto"` doubles its rate until the first quota signal, ms. */
export const SLOW_START_EVERY_MS = 250;

/** Options for {@linkcode RateController}. */
export interface RateControllerOptions {
  /** Highest rate the climb may reach (Infinity for `"auto"`). */
  ceiling: number;
  /** Lowest rate a slow-down may reach. */
  minRate: number;
  /** Double the rate every 500 ms while saturated, until the first quota signal. */
  slowStart: boolean;
  /** Clock time of creation, ms. */
  now: number;
}

/** What a 429 asks of the quota. */
export interface RateLimitDecision {
  /** Whether this 429 counts as a quota signal (not a stray one, not sent before a slow-down). */
  quotaSignal: boolean;
  /** New rate to set, with no other slow-down for `cooldownMs`. */
  slowdown?: { rate: number; cooldownMs: number };
  /** Pause every dispatch until this clock time: the quota is spent until then. */
  pauseUntil?: number;
}

/**
 * True when a 429's body or headers say a quota is used up, rather than the provider pushing
 * back for its own reasons: Gemini names the quota (`QuotaFailure`), OpenAI says `Limit L, Used
 * U`, or `x-ratelimit-remaining-requests` is 0.
 */
export function saysQuotaSpent(info: FailureInfo): boolean {
  if (info.quotaId !== undefined) return true;
  if (/\bLimit \d+, Used \d+/i.test(info.message)) return true;
  return info.rateLimit?.remainingRequests === 0;
}

/**
 * AIMD with a memory of the quota. A request's send-order ticket (from the quota's `acquire`)
 * says whether its answer speaks of the rate in force: a 429 for a request sent before the last
 * slow-down took effect says nothing new and is ignored.
 *
 * - A quota signal is a 429 that says the quota is spent, or the third 429 in a row with no
 *   success between (a success sent before the last of them does not count: it was admitted
 *   while there was room), or 429s making a quarter of the last second's answers (5 % once a signal
 *   was seen: that quota's 429s name nothing), or any 429 once the rate has climbed back to
 *   within one probe step (0.5 %) of a fresh quota estimate; a stray 429, a 500 or a 503 is not one.
 * - On a signal: one slow-down to 95 % of the rate the provider admitted over the last second
 *   (sends not refused, or answers other than 429 if more: items failing for other reasons
 *   were admitted too). When it admitted 90 % of the rate or more, the rate only just crossed
 *   the quota's edge: 97 % of the rate, which is then the estimate. Nobody pauses: only the
 *   refused request waits for its hint, unless the 429 says the quota is spent and its hint is
 *   250 ms or less (exact: until a slot frees): then everyone waits for it.
 * - Two consecutive sends refused after a slow-down: the quota is spent until the hint. Pause
 *   everyone until then. When the refusals' hints ran to one instant (a fixed window) twice in
 *   a row, at least a second apart, pace at 97 % of what one window admitted, and do not climb
 *   above that pace for 30 s.
 * - Climb back once a second while saturated: fast (5 % of the estimate) below 95 % of the
 *   quota estimate, 0.5 % near or above it, fast (5 % of twice the rate) without an estimate or
 *   once it is 30 s old. No climb while 429s are 3 % or more of the last second's answers.
 *   `"auto"` doubles every 250 ms until the first quota signal.
 */
export class RateController {
  #ceiling: number;
  #minRate: number;
  #slowStart: boolean;
  #nextTicket = 0;
  /** Tickets below this were sent before the last slow-down or pause took effect. */
  #effective = 0;
  /** 429s since the last success sent after them (all sent at or after `#effective`). */
  #run = 0;
  /** Ticket of the run's last 429. */
  #runLast = -Infinity;
  /** 429s for consecutive tickets, all sent at or after `#effective`, and the last of them. */
  #streak = 0;
  #lastRefused = -2;
  /** 429s of tickets sent since the last pause took effect. */
  #windowRefused = 0;
  #slowedDown = false;
  #cooldownUntil = -Infinity;
  #lastIncreaseAt: number;
  /** Times of answers that were not 429 (admitted by the provider), oldest first. */
  #admitted: number[] = [];
  /** The last second's sends, oldest first, and whether each was refused (429). */
  #sends: { ticket: number; t: number; refused: boolean }[] = [];
  /** Times of 429 answers, oldest first. */
  #refused: number[] = [];
  /** The end of the last refusal's hint, to tell a fixed window (every hint to one end). */
  #lastEnd = -Infinity;
  /** Whether the last pause was a fixed window's: two refusals in a row named the same end. */
  #fixedPause = false;
  #firstSendAt: number | undefined;
  /** The quota estimate (req/s) and when it was made. */
  #estimate = Infinity;
  #estimateAt = -Infinity;
  /** Fixed windows: the end of the last pause, and the first ticket sent after it. */
  #pauseEnd: number | undefined;
  #pauseTicket = 0;
  /** The estimate is a pace learned from fixed windows: do not climb above it. */
  #paced = false;

  constructor(options: RateControllerOptions) {
    this.#ceiling = options.ceiling;
    this.#minRate = options.minRate;
    this.#slowStart = options.slowStart;
    this.#lastIncreaseAt = options.now;
  }

  /** The highest rate the climb may reach. */
  get ceiling(): number {
    return this.#ceiling;
  }
  set ceiling(rate: number) {
    this.#ceiling = rate;
  }

  /** Still ramping `"auto"` up (no quota signal yet). */
  get slowStart(): boolean {
    return this.#slowStart;
  }
  set slowStart(on: boolean) {
    this.#slowStart = on;
  }

  /** Hands out the next send-order ticket. */
  sent(now: number): number {
    this.#firstSendAt ??= now;
    this.#sends.push({ ticket: this.#nextTicket, t: now, refused: false });
    return this.#nextTicket++;
  }

  /** An answer that was not a 429: admitted by the provider, whatever its fate. */
  admitted(now: number, ticket: number | undefined, success: boolean): void {
    this.#admitted.push(now);
    this.#prune(now);
    // A success sent before the run's last 429 was admitted while there was still room: it says
    // nothing of the quota now, and does not end the run.
    if (
      success && (ticket === undefined || (ticket >= this.#effective && ticket > this.#runLast))
    ) this.#run = 0;
  }

  /** Rate the provider admitted lately, req/s (answers other than 429 over the last second). */
  admittedRate(now: number): number {
    this.#prune(now);
    // Always over a whole second: a quota that was idle (at the start, after a pause) admits a
    // burst, and the burst's pace over a shorter span would overstate it.
    const span = ADMITTED_WINDOW_MS;
    // Sends not refused (answers lag by the latency; a quota's refusals come at once), or the
    // answers other than 429 when no sends were recorded.
    const sendsAdmitted = this.#sends.filter((x) => x.t >= now - span && !x.refused).length;
    return Math.max(this.#admitted.length, sendsAdmitted) / (span / 1000);
  }

  /** Decides what a quota 429 (kind `rate_limit`) does. */
  rateLimited(
    now: number,
    rate: number,
    info: FailureInfo,
    ticket?: number,
  ): RateLimitDecision {
    if (ticket === undefined || ticket >= this.#pauseTicket) this.#windowRefused++;
    this.#refused.push(now);
    this.#prune(now);
    const sent = ticket === undefined ? undefined : this.#sends.find((x) => x.ticket === ticket);
    if (sent) sent.refused = true;
    if (ticket !== undefined && ticket < this.#effective) return { quotaSignal: false };
    const hint = info.retryAfterMs ?? 0;
    const end = now + hint;
    this.#run++;
    this.#runLast = ticket ?? -Infinity;
    const consecutive = ticket !== undefined && ticket === this.#lastRefused + 1;
    this.#streak = consecutive ? this.#streak + 1 : 1;
    // A fixed window: consecutive refusals whose hints run to the same instant.
    const sameEnd = consecutive && hint >= 500 && Math.abs(end - this.#lastEnd) <= 5;
    this.#lastRefused = ticket ?? -2;
    this.#lastEnd = end;
    if (
      !saysQuotaSpent(info) && this.#run < STRAY_RUN && !this.#refusedShare() &&
      !this.#atEstimate(now, rate)
    ) {
      return { quotaSignal: false };
    }
    const ramping = this.#slowStart;
    this.#slowStart = false;
    if (this.#slowedDown && this.#streak >= 2 && hint > 0) {
      // Consecutive sends refused after slowing down: a window that is used up until the hint.
      return { quotaSignal: true, ...this.#spent(now, rate, hint, sameEnd) };
    }
    // The quota is spent, and the hint says exactly until when: nobody gets through before it,
    // and a wait that short costs nothing. Without it, everyone sent meanwhile draws a 429.
    const exact = saysQuotaSpent(info) && hint > 0 && hint <= EXACT_HINT_MS ? end : undefined;
    const pause = exact === undefined ? {} : { pauseUntil: exact };
    if (now < this.#cooldownUntil) return { quotaSignal: true, ...pause };
    const admitted = this.admittedRate(now);
    let next: number;
    if (!this.#paced && admitted >= EDGE_ADMITTED * rate) {
      // The provider admitted (nearly) all of the rate: it just crossed the quota's edge. Back off
      // a little; the quota is about the rate that drew the 429.
      next = Math.max(this.#minRate, rate * EDGE_CUT);
      this.#estimate = rate;
    } else if (ramping && admitted > 0) {
      // The end of `"auto"`'s ramp: the doubling (and the answers' lag) overshot the quota by
      // up to several times; settle at once at what the provider admitted.
      next = Math.max(this.#minRate, Math.min(rate * 0.95, admitted * 0.95));
      this.#estimate = admitted;
    } else {
      const target = admitted > 0 ? admitted * 0.95 : rate * 0.5;
      next = Math.max(this.#minRate, rate * 0.5, Math.min(rate * 0.95, target));
      // Nothing admitted lately (a pause, a stall): no estimate of the quota to be careful near.
      this.#estimate = admitted > 0 ? Math.min(rate, Math.max(admitted, next)) : Infinity;
    }
    this.#estimateAt = now;
    this.#paced = false;
    this.#cooldownUntil = now + SLOWDOWN_COOLDOWN_MS;
    this.#restart();
    this.#slowedDown = true;
    return {
      quotaSignal: true,
      slowdown: { rate: next, cooldownMs: SLOWDOWN_COOLDOWN_MS },
      ...pause,
    };
  }

  /**
   * True when the rate has climbed back to within one probe step (0.5 % of it) of a fresh quota
   * estimate (not a fixed window's pace): a 429 there, even one that names nothing, is the
   * quota's edge again, not a stray one. The estimate is the rate that drew the last signal,
   * one probe step above the quota at best: the step below it draws 429s too.
   */
  #atEstimate(now: number, rate: number): boolean {
    if (!this.#slowedDown || this.#paced || !Number.isFinite(this.#estimate)) return false;
    const step = Math.max(0.02, this.#estimate * 0.005);
    return now - this.#estimateAt < ESTIMATE_TTL_MS && rate >= this.#estimate - step - 1e-9;
  }

  /**
   * True when 429s that say nothing are a large share of the last second's answers: a quarter,
   * or 5 % once a quota signal was seen.
   */
  #refusedShare(): boolean {
    const refused = this.#refused.length;
    const share = this.#slowedDown ? KNOWN_STRAY_SHARE : STRAY_SHARE;
    return refused >= 2 && refused >= share * (refused + this.#admitted.length);
  }

  /**
   * The quota is spent until `now + hint`: pause. Two fixed-window pauses in a row (`fixed`: the
   * refusals named one end) at least a second apart give the pace: what one window admitted.
   */
  #spent(
    now: number,
    rate: number,
    hint: number,
    fixed: boolean,
  ): Omit<RateLimitDecision, "quotaSignal"> {
    const end = now + hint;
    let slowdown: RateLimitDecision["slowdown"];
    // Sent since the last pause ended and not refused: what one window admits.
    const admitted = this.#nextTicket - this.#pauseTicket - this.#windowRefused;
    const period = end - (this.#pauseEnd ?? end);
    if (fixed && this.#fixedPause && period >= 1000 && admitted > 0) {
      const perWindow = Math.max(rate * 0.5, (admitted * 1000) / period * 0.97);
      if (perWindow < rate) {
        slowdown = { rate: Math.max(this.#minRate, perWindow), cooldownMs: hint };
        this.#estimate = perWindow;
        this.#paced = true;
      }
    }
    this.#estimateAt = now;
    this.#fixedPause = fixed;
    this.#pauseEnd = end;
    this.#restart();
    this.#pauseTicket = this.#nextTicket;
    this.#windowRefused = 0;
    this.#cooldownUntil = Math.max(this.#cooldownUntil, end);
    return { pauseUntil: end, slowdown };
  }

  /**
   * The rate to climb to now, or undefined to stay. `saturated`: waiters are queued, so the
   * rate is what holds the run back.
   */
  increase(now: number, rate: number, saturated: boolean): number | undefined {
    const every = this.#slowStart ? SLOW_START_EVERY_MS : 1000;
    if (now - this.#lastIncreaseAt < every || now < this.#cooldownUntil) return undefined;
    this.#lastIncreaseAt = now;
    if (rate >= this.#ceiling || !saturated) return undefined;
    // 429s still coming (a quota that names nothing, just above): climbing would only add more.
    this.#prune(now);
    const answers = this.#refused.length + this.#admitted.length;
    if (answers > 0 && this.#refused.length >= HOLD_SHARE * answers) return undefined;
    if (this.#slowStart) return Math.min(this.#ceiling, rate * 2);
    if (this.#paced && now - this.#estimateAt < PACE_TTL_MS) {
      return rate < this.#estimate
        ? Math.min(this.#estimate, rate + this.#estimate * 0.05)
        : undefined;
    }
    // Near (or above) a fresh estimate, probe gently; without one, or long after it, climb fast.
    const fresh = now - this.#estimateAt < ESTIMATE_TTL_MS && Number.isFinite(this.#estimate);
    const ref = fresh ? this.#estimate : Math.max(rate, Math.min(this.#ceiling, rate * 2));
    const step = rate < ref * 0.95 || !fresh
      ? Math.max(0.05, ref * 0.05)
      : Math.max(0.02, ref * 0.005);
    return Math.min(this.#ceiling, rate + step);
  }

  /** From the next ticket on, answers speak of the new rate: forget the runs of the old one. */
  #restart(): void {
    this.#effective = this.#nextTicket;
    this.#run = 0;
    this.#runLast = -Infinity;
    this.#streak = 0;
    this.#lastRefused = -2;
  }

  #prune(now: number): void {
    for (const times of [this.#admitted, this.#refused]) {
      let i = 0;
      while (i < times.length && times[i] <= now - ADMITTED_WINDOW_MS) i++;
      if (i > 0) times.splice(0, i);
    }
    let i = 0;
    while (i < this.#sends.length && this.#sends[i].t <= now - ADMITTED_WINDOW_MS) i++;
    if (i > 0) this.#sends.splice(0, i);
  }
}
