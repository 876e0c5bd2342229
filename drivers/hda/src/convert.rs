//! Sample conversions for formats the codec cannot play itself: 8-bit unsigned and µ-law
//! to signed 16-bit, and integer-factor upsampling (8 kHz on a codec whose lowest rate is
//! 16 kHz). Pure functions on byte slices, so the kernel glue stays free of arithmetic on
//! user data and the host tests cover them.

/// Unsigned 8-bit (OSS `AFMT_U8`, 0x80 = silence) to signed 16-bit.
pub fn u8_to_s16(s: u8) -> i16 {
    (i16::from(s) - 128) << 8
}

/// Signed 8-bit to signed 16-bit.
pub fn s8_to_s16(s: u8) -> i16 {
    i16::from(s as i8) << 8
}

/// G.711 µ-law to linear 16-bit (the ITU-T table's 14-bit values, shifted to 16).
pub fn ulaw_to_s16(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 7;
    let mantissa = i32::from(u & 0x0f);
    let mag = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -mag } else { mag }) as i16
}

/// Linear 16-bit to µ-law (for tests and round trips).
pub fn s16_to_ulaw(s: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut v = i32::from(s);
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    v = v.min(CLIP) + BIAS;
    let mut exponent = 7u8;
    let mut mask = 0x4000;
    while exponent > 0 && v & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = ((v >> (exponent + 3)) & 0x0f) as u8;
    !(sign | (exponent << 4) | mantissa)
}

/// The sample encodings user space may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    U8,
    S8,
    S16Le,
    MuLaw,
}

impl Encoding {
    pub fn bytes(self) -> usize {
        match self {
            Encoding::S16Le => 2,
            _ => 1,
        }
    }
    fn sample(self, b: &[u8]) -> i16 {
        match self {
            Encoding::U8 => u8_to_s16(b[0]),
            Encoding::S8 => s8_to_s16(b[0]),
            Encoding::MuLaw => ulaw_to_s16(b[0]),
            Encoding::S16Le => i16::from_le_bytes([b[0], b[1]]),
        }
    }
}

/// Converts whole frames of `input` (in `enc`, `channels` interleaved, 1 or 2) to signed
/// 16-bit little-endian frames of `out_channels` (1 or 2; mono is copied to both sides of a
/// stereo output) in `out`, repeating each frame `factor` times with linear interpolation
/// from the previous frame (`prev` carries the last frame across calls; it starts as
/// silence). Returns (input bytes consumed, output bytes written); stops when either side
/// runs out of room for a whole frame.
pub fn convert(
    input: &[u8],
    enc: Encoding,
    channels: usize,
    out_channels: usize,
    factor: usize,
    prev: &mut [i16; 2],
    out: &mut [u8],
) -> (usize, usize) {
    let channels = channels.clamp(1, 2);
    let out_channels = out_channels.clamp(1, 2);
    let factor = factor.max(1);
    let in_frame = enc.bytes() * channels;
    let out_frame = 2 * out_channels * factor;
    let frames = (input.len() / in_frame).min(out.len() / out_frame);
    for f in 0..frames {
        let src = &input[f * in_frame..(f + 1) * in_frame];
        let dst = &mut out[f * out_frame..(f + 1) * out_frame];
        let mut cur = [0i16; 2];
        for (c, v) in cur.iter_mut().enumerate() {
            *v = enc.sample(&src[c.min(channels - 1) * enc.bytes()..]);
        }
        if channels == 2 && out_channels == 1 {
            cur[0] = ((i32::from(cur[0]) + i32::from(cur[1])) / 2) as i16;
        }
        for k in 0..factor {
            for c in 0..out_channels {
                // The k-th of `factor` output frames lies (k + 1) / factor of the way from
                // the previous input frame to this one.
                let a = i32::from(prev[c]);
                let b = i32::from(cur[c]);
                let v = a + (b - a) * (k as i32 + 1) / factor as i32;
                let o = (k * out_channels + c) * 2;
                dst[o..o + 2].copy_from_slice(&(v as i16).to_le_bytes());
            }
        }
        *prev = cur;
    }
    (frames * in_frame, frames * out_frame)
}
