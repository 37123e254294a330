/** Where the API server reports what it did; the appliance passes its own logger. */
export type ApiLog = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;

export const silent: ApiLog = () => {};
