// One timer per request for its successive deadlines (connect, response
// head, body), shared by both transports.

/**
 * One timer per request for its successive deadlines (connect, then response
 * head, then body) instead of a timer each. Moving the deadline later does not re-arm
 * the timer: when it fires early it re-arms for what is left (only requests
 * slower than their connect timeout pay for a second timer). Timers belong to
 * their request in workerd, so this is per request, not per isolate.
 */
export class Deadline {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private armedFor = 0;
  private at = 0;
  private onExpire: (() => void) | undefined;

  /** Calls `onExpire` once `ms` from now, unless set again or cleared before. */
  set(ms: number, onExpire: () => void): void {
    this.at = Date.now() + Math.max(0, ms);
    this.onExpire = onExpire;
    if (this.timer !== undefined) {
      if (this.armedFor <= this.at) return;
      clearTimeout(this.timer);
    }
    this.armedFor = this.at;
    this.timer = setTimeout(this.fire, Math.max(0, ms));
  }

  /** No deadline for now; the armed timer stays, so a later set() seldom needs a new one. */
  hold(): void {
    this.onExpire = undefined;
  }

  clear(): void {
    this.onExpire = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    const left = this.at - Date.now();
    if (left > 0 && this.onExpire) {
      this.armedFor = this.at;
      this.timer = setTimeout(this.fire, left);
      return;
    }
    const expire = this.onExpire;
    this.onExpire = undefined;
    expire?.();
  };
}

