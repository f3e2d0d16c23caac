// k6's global console (https://grafana.com/docs/k6/latest/javascript-api/#console):
// k6 provides it in every context, @types/k6 leaves it to the DOM's lib,
// which the type-check does not load (k6 has no DOM).
declare var console: {
    log(...args: unknown[]): void;
    info(...args: unknown[]): void;
    warn(...args: unknown[]): void;
    error(...args: unknown[]): void;
    debug(...args: unknown[]): void;
};
