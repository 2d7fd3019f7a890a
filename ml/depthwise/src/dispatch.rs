//! Run-time choice of the kernel. This is the crate's only `unsafe` code: a function compiled with
//! `#[target_feature]` may only be called once the CPU is known to have those features.
#![allow(unsafe_code)]

use crate::kernel::{self, Args, Separate};
use crate::{Error, Isa};

/// Lanes and pixels per block for each kernel: `L` is one register's worth of `f32` lanes times
/// the registers per channel block, `P` the pixels that share each loaded weight vector.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Args, kernel};
    use crate::kernel::Fused;

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn avx512(a: &Args, out: &mut [f32]) {
        kernel::run::<Fused, 16, 8>(a, out);
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn avx2_fma(a: &Args, out: &mut [f32]) {
        kernel::run::<Fused, 16, 4>(a, out);
    }
}

fn portable(a: &Args, out: &mut [f32]) {
    kernel::run::<Separate, 8, 4>(a, out);
}

pub(crate) fn is_available(isa: Isa) -> bool {
    match isa {
        Isa::Portable => true,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx512 | Isa::Avx2Fma => false,
    }
}

pub(crate) fn run(isa: Isa, a: &Args, out: &mut [f32]) -> Result<(), Error> {
    if !is_available(isa) {
        return Err(Error::Unavailable(isa));
    }
    match isa {
        Isa::Portable => portable(a, out),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `is_available(Isa::Avx512)` just checked that this CPU has avx512f, avx2 and
        // fma, the features `avx512` is compiled with; the function itself is safe code.
        Isa::Avx512 => unsafe { x86::avx512(a, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `is_available(Isa::Avx2Fma)` just checked that this CPU has avx2 and fma, the
        // features `avx2_fma` is compiled with; the function itself is safe code.
        Isa::Avx2Fma => unsafe { x86::avx2_fma(a, out) },
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx512 | Isa::Avx2Fma => return Err(Error::Unavailable(isa)),
    }
    Ok(())
}
