//! Codec verbs (HDA 7.3) and the widget graph: the audio function group, its widgets,
//! pin default configurations and connection lists, and the search for an output path
//! DAC → (mixer/selector)* → output pin. Everything here goes through [`Verbs`], so it
//! runs the same against the controller's CORB/RIRB and against the tests' fakes.
//!
//! Device-supplied data is untrusted: node counts are clamped to the 7-bit node-id space,
//! connection lists are cut at [`MAX_CONN`] entries (ranges included), entries naming a
//! node outside the function group are dropped, and the path search remembers visited
//! nodes and stops at [`MAX_DEPTH`], so a cyclic or malformed graph ends the walk.

extern crate alloc;

use alloc::vec::Vec;

use crate::Error;
use crate::format::PcmCaps;

// 12-bit verbs (8-bit payload).
pub const GET_PARAMETER: u32 = 0xf00;
pub const GET_CONNECT_LIST: u32 = 0xf02;
pub const SET_CONNECT_SEL: u32 = 0x701;
pub const SET_POWER_STATE: u32 = 0x705;
pub const SET_CHANNEL_STREAMID: u32 = 0x706;
pub const SET_PIN_WIDGET_CONTROL: u32 = 0x707;
pub const SET_EAPD_BTLENABLE: u32 = 0x70c;
pub const GET_CONFIG_DEFAULT: u32 = 0xf1c;
// 4-bit verbs (16-bit payload).
pub const SET_STREAM_FORMAT: u32 = 0x2;
pub const SET_AMP_GAIN_MUTE: u32 = 0x3;
pub const GET_AMP_GAIN_MUTE: u32 = 0xb;

// Parameters.
pub const PAR_VENDOR_ID: u8 = 0x00;
pub const PAR_NODE_COUNT: u8 = 0x04;
pub const PAR_FUNCTION_TYPE: u8 = 0x05;
pub const PAR_AUDIO_WIDGET_CAP: u8 = 0x09;
pub const PAR_PCM: u8 = 0x0a;
pub const PAR_PIN_CAP: u8 = 0x0c;
pub const PAR_AMP_IN_CAP: u8 = 0x0d;
pub const PAR_CONNLIST_LEN: u8 = 0x0e;
pub const PAR_AMP_OUT_CAP: u8 = 0x12;

pub const FUNCTION_AUDIO: u32 = 0x01;

// Widget capabilities.
pub const WCAP_STEREO: u32 = 1 << 0;
pub const WCAP_IN_AMP: u32 = 1 << 1;
pub const WCAP_OUT_AMP: u32 = 1 << 2;
pub const WCAP_AMP_OVRD: u32 = 1 << 3;
pub const WCAP_FORMAT_OVRD: u32 = 1 << 4;
pub const WCAP_CONN_LIST: u32 = 1 << 8;

pub const PINCAP_OUT: u32 = 1 << 4;
pub const PINCAP_HP_DRV: u32 = 1 << 3;
pub const PINCAP_EAPD: u32 = 1 << 16;

pub const PINCTL_OUT_EN: u32 = 0x40;
pub const PINCTL_HP_EN: u32 = 0x80;

pub const AMP_SET_OUTPUT: u32 = 1 << 15;
pub const AMP_SET_INPUT: u32 = 1 << 14;
pub const AMP_SET_LEFT: u32 = 1 << 13;
pub const AMP_SET_RIGHT: u32 = 1 << 12;
pub const AMP_SET_INDEX_SHIFT: u32 = 8;
pub const AMP_MUTE: u32 = 1 << 7;

/// Longest connection list read from a widget (ranges expanded).
pub const MAX_CONN: usize = 32;
/// Longest DAC-to-pin path searched (widgets, pin and DAC included).
pub const MAX_DEPTH: usize = 8;

/// Sends one verb to one codec and returns its response.
pub trait Verbs {
    fn verb(&mut self, cad: u8, nid: u8, verb: u32, payload: u32) -> Result<u32, Error>;

    fn param(&mut self, cad: u8, nid: u8, p: u8) -> Result<u32, Error> {
        self.verb(cad, nid, GET_PARAMETER, u32::from(p))
    }
}

/// The command word for the CORB: codec address, node, verb and payload. A 4-bit verb
/// (`verb < 0x10`) carries 16 payload bits, a 12-bit one 8.
pub fn command(cad: u8, nid: u8, verb: u32, payload: u32) -> u32 {
    let body = if verb < 0x10 {
        (verb << 16) | (payload & 0xffff)
    } else {
        (verb << 8) | (payload & 0xff)
    };
    (u32::from(cad & 0xf) << 28) | (u32::from(nid & 0x7f) << 20) | (body & 0xf_ffff)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WidgetType {
    AudioOut,
    AudioIn,
    Mixer,
    Selector,
    Pin,
    Other(u8),
}

impl WidgetType {
    fn from_caps(caps: u32) -> Self {
        match (caps >> 20) & 0xf {
            0 => WidgetType::AudioOut,
            1 => WidgetType::AudioIn,
            2 => WidgetType::Mixer,
            3 => WidgetType::Selector,
            4 => WidgetType::Pin,
            t => WidgetType::Other(t as u8),
        }
    }
}

/// What a pin's default configuration says it is (HDA 7.3.3.31, bits 23:20).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PinDevice {
    LineOut,
    Speaker,
    Headphone,
    Other,
}

#[derive(Clone, Debug)]
pub struct Widget {
    pub nid: u8,
    pub kind: WidgetType,
    pub caps: u32,
    pub pin_caps: u32,
    pub config: u32,
    pub conn: Vec<u8>,
    pub amp_out: u32,
    pub amp_in: u32,
    pub pcm: u32,
}

impl Widget {
    /// A pin's device, or None if not a pin or not connected (port connectivity "none").
    pub fn pin_device(&self) -> Option<PinDevice> {
        if self.kind != WidgetType::Pin || self.pin_caps & PINCAP_OUT == 0 {
            return None;
        }
        if (self.config >> 30) == 1 {
            return None; // no physical connection
        }
        Some(match (self.config >> 20) & 0xf {
            0 => PinDevice::LineOut,
            1 => PinDevice::Speaker,
            2 => PinDevice::Headphone,
            _ => PinDevice::Other,
        })
    }
}

/// Amplifier capabilities (HDA 7.3.4.10).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AmpCaps(pub u32);

impl AmpCaps {
    pub fn steps(&self) -> u32 {
        (self.0 >> 8) & 0x7f
    }
    pub fn offset(&self) -> u32 {
        self.0 & 0x7f
    }
    pub fn can_mute(&self) -> bool {
        self.0 & (1 << 31) != 0
    }
}

/// One audio function group: its node and widgets.
#[derive(Clone, Debug)]
pub struct FunctionGroup {
    pub cad: u8,
    pub nid: u8,
    pub vendor: u32,
    pub pcm: u32,
    pub amp_out: u32,
    pub amp_in: u32,
    pub widgets: Vec<Widget>,
}

/// `start, count` from a NODE_COUNT response, clamped to valid node ids (1..=127).
fn node_range(v: u32) -> core::ops::Range<u8> {
    let start = ((v >> 16) & 0xff).clamp(1, 127) as u8;
    let count = (v & 0xff).min(128 - u32::from(start)) as u8;
    start..start + count
}

/// Reads a widget's connection list: short (8-bit) or long (16-bit) entries, ranges
/// expanded, cut at [`MAX_CONN`].
fn read_conn<V: Verbs>(v: &mut V, cad: u8, nid: u8) -> Result<Vec<u8>, Error> {
    let len_par = v.param(cad, nid, PAR_CONNLIST_LEN)?;
    let long = len_par & 0x80 != 0;
    let len = (len_par & 0x7f) as usize;
    let per = if long { 2 } else { 4 };
    let width = if long { 16 } else { 8 };
    let range_bit: u32 = 1 << (width - 1);
    let mask: u32 = range_bit - 1;
    let mut out: Vec<u8> = Vec::new();
    let mut prev: Option<u32> = None;
    let mut i = 0;
    while i < len && out.len() < MAX_CONN {
        let word = v.verb(cad, nid, GET_CONNECT_LIST, i as u32)?;
        for k in 0..per {
            if i + k >= len || out.len() >= MAX_CONN {
                break;
            }
            let e = (word >> (k * width)) & ((1 << width) - 1);
            let n = e & mask;
            if e & range_bit != 0 {
                if let Some(p) = prev {
                    // A range p+1..=n; an inverted or huge range is cut by MAX_CONN.
                    let mut m = p + 1;
                    while m <= n && out.len() < MAX_CONN {
                        if m <= 127 {
                            out.push(m as u8);
                        }
                        m += 1;
                    }
                }
            } else if n <= 127 {
                out.push(n as u8);
            }
            prev = Some(n);
        }
        i += per;
    }
    Ok(out)
}

/// Finds the codec's audio function group and reads every widget in it.
pub fn read_function_group<V: Verbs>(v: &mut V, cad: u8) -> Result<FunctionGroup, Error> {
    let vendor = v.param(cad, 0, PAR_VENDOR_ID)?;
    let groups = node_range(v.param(cad, 0, PAR_NODE_COUNT)?);
    for fg in groups {
        let ty = v.param(cad, fg, PAR_FUNCTION_TYPE)?;
        if ty & 0xff != FUNCTION_AUDIO {
            continue;
        }
        let _ = v.verb(cad, fg, SET_POWER_STATE, 0);
        let pcm = v.param(cad, fg, PAR_PCM)?;
        let amp_out = v.param(cad, fg, PAR_AMP_OUT_CAP)?;
        let amp_in = v.param(cad, fg, PAR_AMP_IN_CAP)?;
        let mut widgets = Vec::new();
        let range = node_range(v.param(cad, fg, PAR_NODE_COUNT)?);
        for nid in range.clone() {
            let caps = v.param(cad, nid, PAR_AUDIO_WIDGET_CAP)?;
            let kind = WidgetType::from_caps(caps);
            let mut w = Widget {
                nid,
                kind,
                caps,
                pin_caps: 0,
                config: 0,
                conn: Vec::new(),
                amp_out,
                amp_in,
                pcm,
            };
            if caps & WCAP_AMP_OVRD != 0 {
                w.amp_out = v.param(cad, nid, PAR_AMP_OUT_CAP)?;
                w.amp_in = v.param(cad, nid, PAR_AMP_IN_CAP)?;
            }
            if kind == WidgetType::AudioOut && caps & WCAP_FORMAT_OVRD != 0 {
                let p = v.param(cad, nid, PAR_PCM)?;
                if p != 0 {
                    w.pcm = p;
                }
            }
            if kind == WidgetType::Pin {
                w.pin_caps = v.param(cad, nid, PAR_PIN_CAP)?;
                w.config = v.verb(cad, nid, GET_CONFIG_DEFAULT, 0)?;
            }
            if caps & WCAP_CONN_LIST != 0 {
                w.conn = read_conn(v, cad, nid)?;
                w.conn.retain(|c| range.contains(c));
            }
            widgets.push(w);
        }
        return Ok(FunctionGroup {
            cad,
            nid: fg,
            vendor,
            pcm,
            amp_out,
            amp_in,
            widgets,
        });
    }
    Err(Error::NoAudioFunction)
}

/// An output path: `nodes[0]` is the pin, the last node the DAC; `sel[i]` is the index in
/// `nodes[i]`'s connection list that leads to `nodes[i + 1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub nodes: Vec<u8>,
    pub sel: Vec<u8>,
    pub device: PinDevice,
}

impl Path {
    pub fn pin(&self) -> u8 {
        self.nodes[0]
    }
    pub fn dac(&self) -> u8 {
        *self.nodes.last().unwrap_or(&0)
    }
}

impl FunctionGroup {
    pub fn widget(&self, nid: u8) -> Option<&Widget> {
        self.widgets.iter().find(|w| w.nid == nid)
    }

    /// The best output path: pins by preference line-out, speaker, headphone, other;
    /// from each, a depth-first search through mixers and selectors to a DAC.
    pub fn find_output_path(&self) -> Option<Path> {
        let mut pins: Vec<(PinDevice, u8)> = self
            .widgets
            .iter()
            .filter_map(|w| w.pin_device().map(|d| (d, w.nid)))
            .collect();
        pins.sort();
        for (device, pin) in pins {
            let mut nodes = alloc::vec![pin];
            let mut sel = Vec::new();
            let mut visited = alloc::vec![pin];
            if self.dfs(pin, &mut nodes, &mut sel, &mut visited) {
                return Some(Path { nodes, sel, device });
            }
        }
        None
    }

    fn dfs(&self, nid: u8, nodes: &mut Vec<u8>, sel: &mut Vec<u8>, visited: &mut Vec<u8>) -> bool {
        let Some(w) = self.widget(nid) else {
            return false;
        };
        if nodes.len() >= MAX_DEPTH {
            return false;
        }
        for (i, &next) in w.conn.iter().enumerate() {
            if visited.contains(&next) {
                continue;
            }
            let Some(nw) = self.widget(next) else {
                continue;
            };
            match nw.kind {
                WidgetType::AudioOut => {
                    nodes.push(next);
                    sel.push(i as u8);
                    return true;
                }
                WidgetType::Mixer | WidgetType::Selector => {
                    visited.push(next);
                    nodes.push(next);
                    sel.push(i as u8);
                    if self.dfs(next, nodes, sel, visited) {
                        return true;
                    }
                    nodes.pop();
                    sel.pop();
                }
                _ => {}
            }
        }
        false
    }

    /// The PCM capabilities of `dac` (its own if it overrides the group's).
    pub fn dac_pcm(&self, dac: u8) -> PcmCaps {
        PcmCaps(self.widget(dac).map_or(self.pcm, |w| w.pcm))
    }
}
