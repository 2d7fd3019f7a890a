//! The kernels, and all of the crate's `unsafe` code.
//!
//! Each layer kind (`depthwise`, `pointwise`) is one generic body over a [`Vector`] of `f32`s,
//! implemented here three times: AVX-512 and AVX2 + FMA (inside functions compiled with those
//! features, entered only after run-time detection) and a portable lane array. [`dispatch`] is the
//! one place that enters a feature-gated function.
//!
//! The output is written, never read, through `MaybeUninit`, so callers may hand in memory they
//! have not zeroed.
//!
//! Why `unsafe`: (1) a function compiled with `#[target_feature]` may only run once the CPU is
//! known to have the features; (2) the hot loops load and store through raw pointers, after one
//! check per block that every address they form lies inside its buffer — per-vector bounds checks
//! cost more instructions than the multiply-adds they guard.
#![allow(unsafe_code)]

pub(crate) mod depthwise;
pub(crate) mod pointwise;

use std::mem::MaybeUninit;

use crate::{Error, Isa};

/// A vector of `LANES` `f32`s.
///
/// # Safety (for every method)
/// The CPU must have the features the implementation is compiled for (guaranteed by only using
/// each implementation inside the entry point compiled with them), and pointers must be valid for
/// `LANES` consecutive `f32`s.
pub(crate) trait Vector: Copy {
    const LANES: usize;
    /// Whether this is the portable lane array (which the compiler maps onto however many
    /// registers the baseline target has: 16 × 128 bits on x86-64), not a native vector.
    const PORTABLE: bool = false;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    unsafe fn splat(v: f32) -> Self;
    unsafe fn mul_add(x: Self, w: Self, acc: Self) -> Self;
    unsafe fn add(self, other: Self) -> Self;
    unsafe fn clamp(self, lo: Self, hi: Self) -> Self;
}

/// One layer's computation, generic over the vector it runs with. `run` must be
/// `#[inline(always)]`, so that it is compiled inside (with the features of) the entry point
/// [`dispatch`] calls.
pub(crate) trait Kernel {
    fn run<V: Vector>(self);
}

/// The baseline target's vector: a lane array the compiler vectorises (SSE2 on x86-64). The
/// portable kernels use 8 lanes; the tests also run the 16-lane tiling (AVX-512's) with it, so
/// that tiling is checked on machines without AVX-512 too.
#[derive(Clone, Copy)]
pub(crate) struct Lanes<const N: usize>([f32; N]);

impl<const N: usize> Vector for Lanes<N> {
    const LANES: usize = N;
    const PORTABLE: bool = true;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees N readable f32s at `p`; no alignment is assumed.
        Self(unsafe { p.cast::<[f32; N]>().read_unaligned() })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees N writable f32s at `p`; no alignment is assumed.
        unsafe { p.cast::<[f32; N]>().write_unaligned(self.0) }
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Self([v; N])
    }
    #[inline(always)]
    unsafe fn mul_add(x: Self, w: Self, mut acc: Self) -> Self {
        for ((a, x), w) in acc.0.iter_mut().zip(x.0).zip(w.0) {
            *a += x * w;
        }
        acc
    }
    #[inline(always)]
    unsafe fn add(mut self, other: Self) -> Self {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
        self
    }
    #[inline(always)]
    unsafe fn clamp(mut self, lo: Self, hi: Self) -> Self {
        for ((v, lo), hi) in self.0.iter_mut().zip(lo.0).zip(hi.0) {
            *v = v.max(lo).min(hi);
        }
        self
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Kernel, Vector};

    /// Private to this module: only `avx512` (compiled with avx512f, run after detection) uses it.
    #[derive(Clone, Copy)]
    struct V512(__m512);

    // SAFETY (every method): only reached from `avx512`, so the CPU has avx512f; the caller
    // guarantees 16 valid f32s at `p`; the intrinsics take unaligned addresses.
    impl Vector for V512 {
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Self(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            Self(unsafe { _mm512_set1_ps(v) })
        }
        #[inline(always)]
        unsafe fn mul_add(x: Self, w: Self, acc: Self) -> Self {
            Self(unsafe { _mm512_fmadd_ps(x.0, w.0, acc.0) })
        }
        #[inline(always)]
        unsafe fn add(self, other: Self) -> Self {
            Self(unsafe { _mm512_add_ps(self.0, other.0) })
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            Self(unsafe { _mm512_min_ps(_mm512_max_ps(self.0, lo.0), hi.0) })
        }
    }

    /// Private to this module: only `avx2_fma` (compiled with avx2 and fma, run after
    /// detection) uses it.
    #[derive(Clone, Copy)]
    struct V256(__m256);

    // SAFETY (every method): only reached from `avx2_fma`, so the CPU has avx2 and fma; the
    // caller guarantees 8 valid f32s at `p`; the intrinsics take unaligned addresses.
    impl Vector for V256 {
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Self(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            Self(unsafe { _mm256_set1_ps(v) })
        }
        #[inline(always)]
        unsafe fn mul_add(x: Self, w: Self, acc: Self) -> Self {
            Self(unsafe { _mm256_fmadd_ps(x.0, w.0, acc.0) })
        }
        #[inline(always)]
        unsafe fn add(self, other: Self) -> Self {
            Self(unsafe { _mm256_add_ps(self.0, other.0) })
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            Self(unsafe { _mm256_min_ps(_mm256_max_ps(self.0, lo.0), hi.0) })
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn avx512(kernel: impl Kernel) {
        kernel.run::<V512>();
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn avx2_fma(kernel: impl Kernel) {
        kernel.run::<V256>();
    }
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

/// Runs `kernel` with `isa`'s vector, or answers that this CPU cannot.
pub(crate) fn dispatch(isa: Isa, kernel: impl Kernel) -> Result<(), Error> {
    if !is_available(isa) {
        return Err(Error::Unavailable(isa));
    }
    match isa {
        Isa::Portable => kernel.run::<Lanes<8>>(),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `is_available(Isa::Avx512)` just checked that this CPU has avx512f, avx2 and
        // fma, the features `avx512` is compiled with.
        Isa::Avx512 => unsafe { x86::avx512(kernel) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `is_available(Isa::Avx2Fma)` just checked that this CPU has avx2 and fma, the
        // features `avx2_fma` is compiled with.
        Isa::Avx2Fma => unsafe { x86::avx2_fma(kernel) },
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx512 | Isa::Avx2Fma => return Err(Error::Unavailable(isa)),
    }
    Ok(())
}

/// A new f32 tensor of `shape` whose every element `fill` writes (it must answer `Err` otherwise).
#[cfg(feature = "tract")]
pub(crate) fn new_tensor(
    shape: &[usize],
    fill: impl FnOnce(&mut [MaybeUninit<f32>]) -> Result<(), Error>,
) -> Result<tract_data::prelude::Tensor, Error> {
    use tract_data::prelude::Tensor;
    // SAFETY: the tensor's f32 storage is left uninitialised here and only exposed as
    // `MaybeUninit<f32>` until `fill` has written every element; on `Err` the tensor is dropped
    // unread (f32 needs no drop).
    let mut tensor =
        unsafe { Tensor::uninitialized::<f32>(shape) }.map_err(|e| Error::Tensor(e.to_string()))?;
    let len = tensor.len();
    let ptr = tensor
        .as_ptr_mut::<f32>()
        .map_err(|e| Error::Tensor(e.to_string()))?;
    // SAFETY: `ptr` points at the tensor's `len` contiguous f32s, which nothing else borrows
    // while this slice lives.
    let out = unsafe { std::slice::from_raw_parts_mut(ptr.cast::<MaybeUninit<f32>>(), len) };
    fill(out)?;
    Ok(tensor)
}

/// Views initialised memory as possibly-uninitialised, for a callee that only writes into it.
pub(crate) fn as_uninit(out: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; the kernels only ever store initialised
    // `f32`s through the view, so `out` stays initialised.
    unsafe { &mut *(std::ptr::from_mut(out) as *mut [MaybeUninit<f32>]) }
}
