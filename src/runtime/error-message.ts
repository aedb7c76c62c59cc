/** The message of a thrown value, for a log line or an answer: an Error's message, else the value as text. */
export const messageOf = (value: unknown): string => (value instanceof Error ? value.message : String(value));
