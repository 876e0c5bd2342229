//! Stream formats: what a converter's supported-PCM parameter (HDA 7.3.4.7) allows, the
//! 16-bit stream format word (HDA 3.7.1) that both the stream descriptor and the
//! converter's SET_STREAM_FORMAT take, and the nearest supported format for a request.

/// The rates of the supported-PCM parameter's bits 0–11, in bit order.
pub const RATES: [u32; 12] = [
    8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000, 384000,
];
/// Sample sizes of bits 16–20.
pub const BITS: [u8; 5] = [8, 16, 20, 24, 32];

/// A PCM format: rate in Hz, bits per sample (container: 8 → 1 byte, 16 → 2, 20/24/32 → 4),
/// channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub rate: u32,
    pub bits: u8,
    pub channels: u8,
}

impl Format {
    /// Bytes per sample in memory.
    pub fn sample_bytes(&self) -> usize {
        match self.bits {
            8 => 1,
            16 => 2,
            _ => 4,
        }
    }
    /// Bytes per frame (one sample of every channel).
    pub fn frame_bytes(&self) -> usize {
        self.sample_bytes() * usize::from(self.channels.max(1))
    }
    pub fn bytes_per_second(&self) -> u64 {
        u64::from(self.rate) * self.frame_bytes() as u64
    }

    /// The stream format word, or None if the rate, size or channel count cannot be
    /// expressed (rates must be a 44.1/48 kHz base × 1–4 ÷ 1–8; 1–16 channels).
    pub fn encode(&self) -> Option<u16> {
        let bits: u16 = match self.bits {
            8 => 0,
            16 => 1,
            20 => 2,
            24 => 3,
            32 => 4,
            _ => return None,
        };
        if self.channels == 0 || self.channels > 16 {
            return None;
        }
        let (base, mult, div) = rate_parts(self.rate)?;
        Some(
            (u16::from(base == 44100) << 14)
                | (u16::from(mult - 1) << 11)
                | (u16::from(div - 1) << 8)
                | (bits << 4)
                | u16::from(self.channels - 1),
        )
    }

    /// Decodes a stream format word (PCM only).
    pub fn decode(w: u16) -> Option<Format> {
        if w & 0x8000 != 0 {
            return None;
        }
        let base: u32 = if w & 0x4000 != 0 { 44100 } else { 48000 };
        let mult = u32::from((w >> 11) & 7) + 1;
        let div = u32::from((w >> 8) & 7) + 1;
        if mult > 4 {
            return None;
        }
        let bits = *BITS.get(usize::from((w >> 4) & 7))?;
        Some(Format {
            rate: base * mult / div,
            bits,
            channels: (w & 0xf) as u8 + 1,
        })
    }
}

/// (base, multiplier, divisor) with `base * mult / div == rate` exactly.
fn rate_parts(rate: u32) -> Option<(u32, u8, u8)> {
    for base in [48000u32, 44100] {
        for mult in 1u8..=4 {
            for div in 1u8..=8 {
                if base * u32::from(mult) == rate * u32::from(div) {
                    return Some((base, mult, div));
                }
            }
        }
    }
    None
}

/// A converter's supported-PCM parameter, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcmCaps(pub u32);

impl PcmCaps {
    pub fn rates(&self) -> impl Iterator<Item = u32> + '_ {
        RATES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, r)| *r)
    }
    pub fn bits(&self) -> impl Iterator<Item = u8> + '_ {
        BITS.iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << (16 + i)) != 0)
            .map(|(_, b)| *b)
    }
    pub fn supports_rate(&self, rate: u32) -> bool {
        self.rates().any(|r| r == rate)
    }
    pub fn supports_bits(&self, bits: u8) -> bool {
        self.bits().any(|b| b == bits)
    }
    /// The supported rate nearest to `rate` (ties go up), or None if no rate bit is set.
    pub fn nearest_rate(&self, rate: u32) -> Option<u32> {
        self.rates()
            .min_by_key(|&r| (r.abs_diff(rate), core::cmp::Reverse(r)))
    }
    /// The supported size nearest to `bits`, preferring larger on ties.
    pub fn nearest_bits(&self, bits: u8) -> Option<u8> {
        self.bits()
            .min_by_key(|&b| (b.abs_diff(bits), core::cmp::Reverse(b)))
    }
    /// The nearest format the converter can play: rate and size from the caps, channels
    /// clamped to 1..=`max_channels`.
    pub fn nearest(&self, want: Format, max_channels: u8) -> Option<Format> {
        Some(Format {
            rate: self.nearest_rate(want.rate)?,
            bits: self.nearest_bits(want.bits)?,
            channels: want.channels.clamp(1, max_channels.max(1)),
        })
    }
}
