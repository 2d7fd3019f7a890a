//! The project's own convolution kernels for the ml tier, channels-last (`H × W × C`), each with
//! its bias and clamp (ReLU6 is a clamp to `[0, 6]`) fused, so each output element is written once:
//!
//! - [`depthwise`]: one `KH × KW` filter per channel ([`Filter`]);
//! - [`pointwise`]: the 1×1 convolution, a matrix product of the pixels' channel vectors with the
//!   weights, optionally adding a residual input after the clamp ([`Pointwise`]).
//!
//! Each has three kernels sharing one generic body: AVX-512 and AVX2 + FMA, chosen at run time,
//! and a portable fallback. All `unsafe` code is in `simd/`, which says how a layer runs and why
//! it needs `unsafe`; the rest of the crate denies it.
#![deny(unsafe_code)]

pub mod depthwise;
pub mod pointwise;
mod simd;
#[cfg(test)]
mod test_support;

use std::fmt;

pub use depthwise::{Filter, Geometry};
pub use pointwise::Pointwise;

/// Which instruction set the kernel runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// 512-bit vectors with fused multiply-add (x86-64 with `avx512f`).
    Avx512,
    /// 256-bit vectors with fused multiply-add (x86-64 with `avx2` and `fma`).
    Avx2Fma,
    /// Plain Rust, vectorised by the compiler for the build's baseline target.
    Portable,
}

impl Isa {
    /// The best instruction set this CPU has.
    pub fn detect() -> Self {
        [Self::Avx512, Self::Avx2Fma]
            .into_iter()
            .find(|isa| isa.is_available())
            .unwrap_or(Self::Portable)
    }

    /// Whether this CPU can run the kernel built for `self`.
    pub fn is_available(self) -> bool {
        simd::is_available(self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512",
            Self::Avx2Fma => "avx2+fma",
            Self::Portable => "portable",
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a layer cannot be set up or run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A size is zero, a window does not fit, a clamp is empty, or a size overflows.
    Geometry(String),
    /// A buffer does not have the length the geometry asks for.
    Length {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    /// The requested instruction set is not available on this CPU.
    Unavailable(Isa),
    /// The output tensor could not be made.
    Tensor(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Geometry(why) => write!(f, "bad layer geometry: {why}"),
            Self::Length {
                what,
                expected,
                actual,
            } => write!(f, "{what} has {actual} values, expected {expected}"),
            Self::Unavailable(isa) => write!(f, "this CPU cannot run the {isa} kernel"),
            Self::Tensor(why) => write!(f, "cannot make the output tensor: {why}"),
        }
    }
}

impl std::error::Error for Error {}

pub(crate) fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<(), Error> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::Length {
            what,
            expected,
            actual,
        })
    }
}
