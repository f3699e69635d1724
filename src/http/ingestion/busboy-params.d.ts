// busboy's own Content-Type parameter parser (CommonJS, untyped): [mediaType, [name, value], ...]
declare module '@fastify/busboy/lib/utils/parseParams.js' {
  function parseParams (header: string): Array<string | [string, string]>
  export default parseParams
}
