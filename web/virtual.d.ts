/** The WGSL sources of shaders/, by file name; web/build.ts generates this module. */
declare module 'virtual:shaders' {
  const sources: Readonly<Record<string, string>>;
  export default sources;
}
