/**
 * The Fetch standard's types, derived from what every runtime declares (`fetch`,
 * `RequestInit`), so that our declarations need no DOM lib: a Node project with
 * `lib: ["es2022"]` and `@types/node` has `fetch` and `RequestInit`, not `BodyInit`,
 * `RequestInfo` or `RequestRedirect`.
 */

/** What `fetch` takes as its first argument (`RequestInfo | URL`). */
export type FetchInput = Parameters<typeof globalThis.fetch>[0]
/** A request body (`BodyInit`). */
export type FetchBody = NonNullable<RequestInit["body"]>
/** A redirect mode (`RequestRedirect`). */
export type FetchRedirect = NonNullable<RequestInit["redirect"]>
