//! libjpeg-turbo's TurboJPEG API (its SIMD build, linked statically): read a JPEG header,
//! decode at a reduced DCT scale, encode. Whether the build found the library is
//! [`AVAILABLE`]; without it every call answers [`TurboError::Unavailable`].

// The one crate of the workspace that calls C: every unsafe block is a TurboJPEG call whose
// buffers are sized here from the same numbers passed to it.
#![allow(unsafe_code)]

/// True when libjpeg-turbo was linked in at build time.
pub const AVAILABLE: bool = cfg!(turbojpeg);

/// Why a TurboJPEG call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TurboError {
    /// This build has no libjpeg-turbo (see the crate's build script).
    #[error("libjpeg-turbo is not linked into this build")]
    Unavailable,
    /// libjpeg-turbo refused the data or the parameters; its own message.
    #[error("{0}")]
    Library(String),
    /// A size that does not fit the library's `int`.
    #[error("{0} is too large for libjpeg-turbo")]
    TooLarge(&'static str),
    /// A progressive file with more than [`MAX_SCANS`] scans (`TJFLAG_LIMITSCANS`).
    #[error("the JPEG has more than {MAX_SCANS} scans")]
    TooManyScans,
}

/// The scan limit libjpeg-turbo applies with `TJFLAG_LIMITSCANS` (fixed in turbojpeg.c).
pub const MAX_SCANS: u32 = 500;

/// The colour model of the JPEG data, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colorspace {
    Rgb,
    YCbCr,
    Gray,
    Cmyk,
    Ycck,
}

/// The pixel layouts decoded to or encoded from, 8 bits per channel, rows top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    Rgb,
    Gray,
}

impl PixelFormat {
    pub fn channels(self) -> usize {
        match self {
            Self::Rgb => 3,
            Self::Gray => 1,
        }
    }
}

/// What a JPEG header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    pub colorspace: Colorspace,
}

/// A DCT scaling factor `num/denom` libjpeg-turbo decodes at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalingFactor {
    pub num: u32,
    pub denom: u32,
}

impl ScalingFactor {
    pub const ONE: Self = Self { num: 1, denom: 1 };

    /// A side of `side` pixels at this scale, rounded up as libjpeg-turbo does (`TJSCALED`).
    pub fn scale(self, side: u32) -> u32 {
        let scaled = (u64::from(side) * u64::from(self.num)).div_ceil(u64::from(self.denom));
        u32::try_from(scaled).unwrap_or(u32::MAX)
    }
}

/// The reduced scales libjpeg-turbo has SIMD inverse DCTs for (x86-64), largest first. Its
/// other eighths are plain C, slower than decoding at the next of these and resampling.
pub const SIMD_REDUCED_SCALES: [ScalingFactor; 3] = [
    ScalingFactor { num: 1, denom: 2 },
    ScalingFactor { num: 1, denom: 4 },
    ScalingFactor { num: 1, denom: 8 },
];

/// Reads the header of `jpeg` without decoding any pixels.
pub fn read_header(jpeg: &[u8]) -> Result<Header, TurboError> {
    imp::read_header(jpeg)
}

/// Decodes `jpeg` at `scale` into `format`. Warnings are errors, so a truncated or corrupt file
/// fails rather than decoding as grey; progressive files with an abusive number of scans fail
/// too. `header` must be this file's, from [`read_header`].
pub fn decode(
    jpeg: &[u8],
    header: &Header,
    scale: ScalingFactor,
    format: PixelFormat,
) -> Result<Vec<u8>, TurboError> {
    imp::decode(jpeg, header, scale, format)
}

/// Encodes `pixels` (`width`×`height` in `format`) as a baseline JPEG at `quality` (1–100),
/// chroma subsampled 4:2:0 for RGB.
pub fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    format: PixelFormat,
    quality: u8,
) -> Result<Vec<u8>, TurboError> {
    let expected = width as usize * height as usize * format.channels();
    if pixels.len() != expected {
        return Err(TurboError::Library(format!(
            "{} bytes of pixels for a {width}x{height} image that needs {expected}",
            pixels.len()
        )));
    }
    imp::encode(pixels, width, height, format, quality)
}

#[cfg(not(turbojpeg))]
mod imp {
    use super::*;

    pub(super) fn read_header(_: &[u8]) -> Result<Header, TurboError> {
        Err(TurboError::Unavailable)
    }

    pub(super) fn decode(
        _: &[u8],
        _: &Header,
        _: ScalingFactor,
        _: PixelFormat,
    ) -> Result<Vec<u8>, TurboError> {
        Err(TurboError::Unavailable)
    }

    pub(super) fn encode(
        _: &[u8],
        _: u32,
        _: u32,
        _: PixelFormat,
        _: u8,
    ) -> Result<Vec<u8>, TurboError> {
        Err(TurboError::Unavailable)
    }
}

#[cfg(turbojpeg)]
mod imp {
    use std::ffi::{CStr, c_char, c_int, c_uchar, c_ulong, c_void};

    use super::*;

    // From turbojpeg.h (TurboJPEG 2.1).
    const TJPF_RGB: c_int = 0;
    const TJPF_GRAY: c_int = 6;
    const TJSAMP_420: c_int = 2;
    const TJSAMP_GRAY: c_int = 3;
    const TJCS_RGB: c_int = 0;
    const TJCS_YCBCR: c_int = 1;
    const TJCS_GRAY: c_int = 2;
    const TJCS_CMYK: c_int = 3;
    const TJFLAG_STOPONWARNING: c_int = 8192;
    const TJFLAG_LIMITSCANS: c_int = 32768;

    type Handle = *mut c_void;

    unsafe extern "C" {
        fn tjInitDecompress() -> Handle;
        fn tjInitCompress() -> Handle;
        fn tjDestroy(handle: Handle) -> c_int;
        fn tjGetErrorStr2(handle: Handle) -> *mut c_char;
        fn tjDecompressHeader3(
            handle: Handle,
            jpeg_buf: *const c_uchar,
            jpeg_size: c_ulong,
            width: *mut c_int,
            height: *mut c_int,
            jpeg_subsamp: *mut c_int,
            jpeg_colorspace: *mut c_int,
        ) -> c_int;
        fn tjDecompress2(
            handle: Handle,
            jpeg_buf: *const c_uchar,
            jpeg_size: c_ulong,
            dst_buf: *mut c_uchar,
            width: c_int,
            pitch: c_int,
            height: c_int,
            pixel_format: c_int,
            flags: c_int,
        ) -> c_int;
        fn tjCompress2(
            handle: Handle,
            src_buf: *const c_uchar,
            width: c_int,
            pitch: c_int,
            height: c_int,
            pixel_format: c_int,
            jpeg_buf: *mut *mut c_uchar,
            jpeg_size: *mut c_ulong,
            jpeg_subsamp: c_int,
            jpeg_qual: c_int,
            flags: c_int,
        ) -> c_int;
        fn tjFree(buffer: *mut c_uchar);
    }

    /// A TurboJPEG instance, destroyed on drop.
    struct Instance(Handle);

    impl Instance {
        fn new(init: unsafe extern "C" fn() -> Handle) -> Result<Self, TurboError> {
            // SAFETY: the init functions take nothing and return NULL on failure.
            let handle = unsafe { init() };
            if handle.is_null() {
                // SAFETY: with NULL the library reports why the last init failed.
                return Err(TurboError::Library(unsafe { error_text(handle) }));
            }
            Ok(Self(handle))
        }

        fn error(&self) -> TurboError {
            // SAFETY: self.0 is a live instance.
            TurboError::Library(unsafe { error_text(self.0) })
        }
    }

    impl Drop for Instance {
        fn drop(&mut self) {
            // SAFETY: self.0 is a live instance, destroyed once.
            unsafe { tjDestroy(self.0) };
        }
    }

    /// # Safety
    /// `handle` is a live instance or NULL.
    unsafe fn error_text(handle: Handle) -> String {
        // SAFETY: the library returns a NUL-terminated string it owns, valid until its next
        // call on this handle (or thread, for NULL); it is copied at once.
        let text = unsafe { tjGetErrorStr2(handle) };
        if text.is_null() {
            return "unknown libjpeg-turbo error".into();
        }
        // SAFETY: non-NULL, NUL-terminated, see above.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }

    fn to_int(value: u32, what: &'static str) -> Result<c_int, TurboError> {
        c_int::try_from(value).map_err(|_| TurboError::TooLarge(what))
    }

    fn jpeg_size(jpeg: &[u8]) -> Result<c_ulong, TurboError> {
        c_ulong::try_from(jpeg.len()).map_err(|_| TurboError::TooLarge("the JPEG"))
    }

    fn pixel_format(format: PixelFormat) -> c_int {
        match format {
            PixelFormat::Rgb => TJPF_RGB,
            PixelFormat::Gray => TJPF_GRAY,
        }
    }

    pub(super) fn read_header(jpeg: &[u8]) -> Result<Header, TurboError> {
        let instance = Instance::new(tjInitDecompress)?;
        let (mut width, mut height, mut subsampling, mut colorspace) = (0, 0, 0, 0);
        // SAFETY: the buffer is valid for jpeg.len() bytes; the outputs are local ints.
        let status = unsafe {
            tjDecompressHeader3(
                instance.0,
                jpeg.as_ptr(),
                jpeg_size(jpeg)?,
                &mut width,
                &mut height,
                &mut subsampling,
                &mut colorspace,
            )
        };
        if status != 0 {
            return Err(instance.error());
        }
        let colorspace = match colorspace {
            TJCS_RGB => Colorspace::Rgb,
            TJCS_YCBCR => Colorspace::YCbCr,
            TJCS_GRAY => Colorspace::Gray,
            TJCS_CMYK => Colorspace::Cmyk,
            _ => Colorspace::Ycck,
        };
        let side = |value: c_int| u32::try_from(value).map_err(|_| instance.error());
        Ok(Header {
            width: side(width)?,
            height: side(height)?,
            colorspace,
        })
    }

    pub(super) fn decode(
        jpeg: &[u8],
        header: &Header,
        scale: ScalingFactor,
        format: PixelFormat,
    ) -> Result<Vec<u8>, TurboError> {
        let width = scale.scale(header.width);
        let height = scale.scale(header.height);
        let (c_width, c_height) = (to_int(width, "the width")?, to_int(height, "the height")?);
        let instance = Instance::new(tjInitDecompress)?;
        let mut pixels = vec![0u8; width as usize * height as usize * format.channels()];
        // SAFETY: `pixels` holds exactly width*height pixels of `format`, the size libjpeg-turbo
        // writes for that requested size with a pitch of 0 (rows packed); it picks the scaling
        // factor whose output fits the requested size, which is `scale`'s.
        let status = unsafe {
            tjDecompress2(
                instance.0,
                jpeg.as_ptr(),
                jpeg_size(jpeg)?,
                pixels.as_mut_ptr(),
                c_width,
                0,
                c_height,
                pixel_format(format),
                TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS,
            )
        };
        if status != 0 {
            return Err(match instance.error() {
                // turbojpeg.c's progress monitor: "Progressive JPEG image has more than 500
                // scans"; the only way to tell this error from the others is its text.
                TurboError::Library(message)
                    if message.contains("more than") && message.contains("scans") =>
                {
                    TurboError::TooManyScans
                }
                other => other,
            });
        }
        Ok(pixels)
    }

    pub(super) fn encode(
        pixels: &[u8],
        width: u32,
        height: u32,
        format: PixelFormat,
        quality: u8,
    ) -> Result<Vec<u8>, TurboError> {
        let (c_width, c_height) = (to_int(width, "the width")?, to_int(height, "the height")?);
        let subsampling = match format {
            PixelFormat::Rgb => TJSAMP_420,
            PixelFormat::Gray => TJSAMP_GRAY,
        };
        let instance = Instance::new(tjInitCompress)?;
        let mut jpeg: *mut c_uchar = std::ptr::null_mut();
        let mut size: c_ulong = 0;
        // SAFETY: `pixels` holds width*height pixels of `format` (checked by the caller); with a
        // NULL buffer the library allocates the output and reports its size.
        let status = unsafe {
            tjCompress2(
                instance.0,
                pixels.as_ptr(),
                c_width,
                0,
                c_height,
                pixel_format(format),
                &mut jpeg,
                &mut size,
                subsampling,
                c_int::from(quality.clamp(1, 100)),
                0,
            )
        };
        let result = if status != 0 || jpeg.is_null() {
            Err(instance.error())
        } else {
            let len = usize::try_from(size).map_err(|_| TurboError::TooLarge("the output"));
            // SAFETY: on success `jpeg` points to `size` bytes the library allocated.
            len.map(|len| unsafe { std::slice::from_raw_parts(jpeg, len) }.to_vec())
        };
        if !jpeg.is_null() {
            // SAFETY: allocated by the library (tjAlloc), freed once.
            unsafe { tjFree(jpeg) };
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_rounds_up_like_tjscaled() {
        let half = SIMD_REDUCED_SCALES[0];
        assert_eq!(half.scale(4000), 2000);
        assert_eq!(half.scale(3001), 1501);
        assert_eq!(SIMD_REDUCED_SCALES[2].scale(9), 2);
        assert_eq!(ScalingFactor::ONE.scale(1155), 1155);
    }

    #[test]
    fn a_gray_image_round_trips_when_linked() {
        let (width, height) = (64u32, 48u32);
        let pixels: Vec<u8> = (0..width * height).map(|i| (i % 251) as u8).collect();
        let encoded = encode(&pixels, width, height, PixelFormat::Gray, 90);
        if !AVAILABLE {
            assert_eq!(encoded, Err(TurboError::Unavailable));
            return;
        }
        let jpeg = encoded.expect("encodes");
        let header = read_header(&jpeg).expect("header");
        assert_eq!((header.width, header.height), (width, height));
        assert_eq!(header.colorspace, Colorspace::Gray);
        let half = decode(&jpeg, &header, SIMD_REDUCED_SCALES[0], PixelFormat::Gray)
            .expect("decodes at 1/2");
        assert_eq!(half.len(), 32 * 24);
        let truncated = &jpeg[..jpeg.len() / 2];
        assert!(matches!(
            decode(truncated, &header, ScalingFactor::ONE, PixelFormat::Gray),
            Err(TurboError::Library(_))
        ));
        // Warnings are errors too, even a harmless one such as stray bytes between segments.
        let mut stray = jpeg.clone();
        let dqt = stray
            .windows(2)
            .position(|pair| pair == [0xFF, 0xDB])
            .expect("a quantization table");
        stray.splice(dqt..dqt, [0, 0]);
        let refused = decode(&stray, &header, ScalingFactor::ONE, PixelFormat::Gray);
        assert!(
            matches!(&refused, Err(TurboError::Library(message)) if message.contains("extraneous")),
            "{refused:?}"
        );
    }

    #[test]
    fn encode_refuses_a_short_buffer() {
        assert!(matches!(
            encode(&[0; 10], 4, 4, PixelFormat::Rgb, 85),
            Err(TurboError::Library(_))
        ));
    }
}
