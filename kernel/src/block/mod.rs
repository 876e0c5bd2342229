//! The block layer: block devices (virtio-blk today), their partitions, `/dev/vdX[N]`
//! nodes, byte-granular access for device files and file systems, and the `BLK*` ioctls.
//!
//! Numbering: major 254 (Linux's usual dynamic `virtblk` major), minor = 16 × disk +
//! partition (so 15 partitions per disk, as Linux's virtio-blk).

#[cfg(target_os = "none")]
mod layer;
pub mod part;
#[cfg(target_os = "none")]
#[allow(unsafe_code)]
// virtio-drivers' `Hal` and its non-blocking request API, whose buffers must outlive the request
pub mod virtio;

#[cfg(target_os = "none")]
pub use layer::*;
