// The part of pngjs (CommonJS, no bundled types) that src/io/png.ts uses: its synchronous API.
declare module 'pngjs' {
  interface PngImage {
    width: number;
    height: number;
    /** RGBA, 8 bits per channel (the reader rescales 1–16-bit images and expands palettes and gray). */
    data: Buffer;
  }
  interface ReadOptions {
    checkCRC?: boolean;
  }
  interface WriteOptions {
    /** 0 gray, 2 RGB, 4 gray + alpha, 6 RGBA (the output). */
    colorType?: 0 | 2 | 4 | 6;
    /** The layout of `data` (default 6, RGBA). */
    inputColorType?: 0 | 2 | 4 | 6;
    bitDepth?: 8 | 16;
    deflateLevel?: number;
    filterType?: number | number[];
  }
  const pngjs: {
    PNG: {
      sync: {
        read(buffer: Buffer, options?: ReadOptions): PngImage;
        write(png: PngImage, options?: WriteOptions): Buffer;
      };
    };
  };
  export default pngjs;
}
