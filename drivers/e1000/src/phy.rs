//! The driver as a `smoltcp` device: a receive token owns the copied frame, a transmit
//! token borrows the driver and copies the frame smoltcp writes into a descriptor buffer.

use alloc::vec::Vec;

use adros_hal::{Hal, Mmio};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::{E1000, MAX_FRAME};

pub struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

pub struct TxToken<'a, H: Hal, M: Mmio>(&'a mut E1000<H, M>);

impl<H: Hal, M: Mmio> phy::TxToken for TxToken<'_, H, M> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut f = Some(f);
        match self.0.transmit(len, |buf| f.take().map(|f| f(buf))) {
            Ok(Some(r)) => r,
            // Refused (counted in tx_dropped): smoltcp still needs its result, so the frame
            // is built and thrown away, as a lost frame on the wire would be.
            _ => {
                let mut scratch = alloc::vec![0u8; len];
                match f.take() {
                    Some(f) => f(&mut scratch),
                    None => unreachable!("transmit consumed the closure but returned no result"),
                }
            }
        }
    }
}

impl<H: Hal, M: Mmio> phy::Device for E1000<H, M> {
    type RxToken<'a>
        = RxToken
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, H, M>
    where
        Self: 'a;

    fn receive(&mut self, _t: Instant) -> Option<(RxToken, TxToken<'_, H, M>)> {
        let frame = E1000::receive(self)?;
        Some((RxToken(frame), TxToken(self)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<TxToken<'_, H, M>> {
        self.can_transmit().then_some(TxToken(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = MAX_FRAME;
        c.max_burst_size = Some(crate::TX_RING / 2);
        c
    }
}

/// The driver under the kernel's loopback ([`adros_netloop::Looped`]).
impl<H: Hal, M: Mmio> adros_netloop::Wire for E1000<H, M> {
    fn receive_frame(&mut self) -> Option<Vec<u8>> {
        E1000::receive(self)
    }

    fn can_send(&mut self) -> bool {
        self.can_transmit()
    }

    fn send_frame(&mut self, frame: &[u8]) -> bool {
        self.transmit(frame.len(), |b| b.copy_from_slice(frame))
            .is_ok()
    }

    fn capabilities(&self) -> DeviceCapabilities {
        phy::Device::capabilities(self)
    }
}
