/**
 * Byte chunks read under a cap, joined once the reading is done (the token
 * endpoint's response, the proxy's replayable request bodies).
 */

/** The chunks as one array; `total` is the sum of their lengths, known from the read. */
export const concatBytes = (chunks: ReadonlyArray<Uint8Array>, total: number): Uint8Array<ArrayBuffer> => {
  const bytes = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return bytes
}
