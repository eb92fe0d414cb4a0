//! The length of a C string and a copy of bytes, written inline for the caller's path.
//!
//! A `rarch_log` after a pause finds the pages it touches cold, and each costs about 300 ns on
//! the machines measured (docs/performance-history.md, "Pages of a cold call"). libc's `strlen`
//! and `memcpy` are called through entries of the library's GOT, each on a page of its own, run
//! on two pages of libc's code, and `memcpy` reads a tuning threshold on a page of libc's data:
//! five pages for four lengths and four copies of a few hundred bytes. These two functions do
//! the same on the caller's own pages (its code is in the library's hot section). Everywhere
//! else the library uses the standard ones.
//!
//! [`cstr_len`] is SSE2 (every x86-64 has it): 16 bytes at a time from 16-byte aligned
//! addresses, so that a read never crosses into the next page (it may read past the string's
//! NUL within its 16 bytes, as glibc's does; valgrind's memcheck accepts such reads). On other
//! architectures it is `CStr::from_ptr`. [`copy`] moves 16 bytes at a time, the last 16 or 32
//! overlapping what came before (`rep movsb` instead cost about 30 ns more a call, 10% of a
//! warm `rarch_log`: `make bench-ab`); elsewhere it is `copy_from_slice`.

/// The length of the NUL-terminated string at `p`.
///
/// # Safety
/// `p` points to a NUL-terminated string.
#[inline(always)]
pub unsafe fn cstr_len(p: *const u8) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let len: usize;
        // SAFETY: aligned 16-byte loads from the string's first block to the block of its NUL,
        // which the caller's contract makes readable (a block never spans two pages).
        unsafe {
            std::arch::asm!(
                "mov {a}, {p}",
                "and {a}, -16",
                "pxor {z}, {z}",
                "movdqa {v}, xmmword ptr [{a}]",
                "pcmpeqb {v}, {z}",
                "pmovmskb {m:e}, {v}",
                "mov ecx, {p:e}",
                "and ecx, 15",
                "shr {m:e}, cl",
                "test {m:e}, {m:e}",
                "jnz 3f",
                "2:",
                "add {a}, 16",
                "movdqa {v}, xmmword ptr [{a}]",
                "pcmpeqb {v}, {z}",
                "pmovmskb {m:e}, {v}",
                "test {m:e}, {m:e}",
                "jz 2b",
                "bsf {m:e}, {m:e}",
                "add {a}, {m}",
                "sub {a}, {p}",
                "jmp 4f",
                "3:",
                "bsf {m:e}, {m:e}",
                "mov {a}, {m}",
                "4:",
                p = in(reg) p,
                a = out(reg) len,
                m = out(reg) _,
                z = out(xmm_reg) _,
                v = out(xmm_reg) _,
                out("ecx") _,
                options(nostack, readonly, pure)
            );
        }
        len
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: forwarded contract.
        unsafe { std::ffi::CStr::from_ptr(p.cast()) }.count_bytes()
    }
}

/// Copies `src` into `dst`, which has the same length (a shorter `dst` takes a prefix).
#[inline(always)]
pub fn copy(dst: &mut [u8], src: &[u8]) {
    let n = src.len().min(dst.len());
    #[cfg(target_arch = "x86_64")]
    {
        let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
        // SAFETY: every access below is inside the first `n` bytes of `src` and `dst`, which
        // are distinct slices (one is borrowed mutably).
        unsafe {
            use std::ptr::{read_unaligned as rd, write_unaligned as wr};
            if n > 32 {
                let mut i = 0;
                while i + 32 < n {
                    let (a, b) = (
                        rd(s.add(i).cast::<u128>()),
                        rd(s.add(i + 16).cast::<u128>()),
                    );
                    wr(d.add(i).cast::<u128>(), a);
                    wr(d.add(i + 16).cast::<u128>(), b);
                    i += 32;
                    // An opaque step, so that the loop is not turned back into a call of
                    // `memcpy`.
                    std::arch::asm!("", options(nostack, preserves_flags));
                }
                let (a, b) = (
                    rd(s.add(n - 32).cast::<u128>()),
                    rd(s.add(n - 16).cast::<u128>()),
                );
                wr(d.add(n - 32).cast::<u128>(), a);
                wr(d.add(n - 16).cast::<u128>(), b);
            } else if n >= 16 {
                let (a, b) = (rd(s.cast::<u128>()), rd(s.add(n - 16).cast::<u128>()));
                wr(d.cast::<u128>(), a);
                wr(d.add(n - 16).cast::<u128>(), b);
            } else if n >= 8 {
                let (a, b) = (rd(s.cast::<u64>()), rd(s.add(n - 8).cast::<u64>()));
                wr(d.cast::<u64>(), a);
                wr(d.add(n - 8).cast::<u64>(), b);
            } else if n >= 4 {
                let (a, b) = (rd(s.cast::<u32>()), rd(s.add(n - 4).cast::<u32>()));
                wr(d.cast::<u32>(), a);
                wr(d.add(n - 4).cast::<u32>(), b);
            } else if n > 0 {
                let (a, b, c) = (*s, *s.add(n / 2), *s.add(n - 1));
                *d = a;
                *d.add(n / 2) = b;
                *d.add(n - 1) = c;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst[..n].copy_from_slice(&src[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cstr_len_finds_the_nul_at_every_length_and_alignment() {
        let mut buf = vec![0u8; 4096 + 64];
        for start in 0..32 {
            for len in 0..300 {
                buf.fill(b'x');
                buf[start + len] = 0;
                // SAFETY: a NUL at start + len.
                let got = unsafe { cstr_len(buf[start..].as_ptr()) };
                assert_eq!(got, len, "{start} {len}");
            }
        }
        // A NUL on the last byte before a page boundary, from starts in the blocks before it.
        let page = 4096;
        let base = buf.as_ptr() as usize;
        let end = (base + page) & !(page - 1);
        let at = end - base - 1;
        buf.fill(b'y');
        buf[at] = 0;
        for start in at.saturating_sub(40)..=at {
            // SAFETY: a NUL at `at`.
            assert_eq!(unsafe { cstr_len(buf[start..].as_ptr()) }, at - start);
        }
    }

    #[test]
    fn copy_moves_every_length_exactly() {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 7 + 1) as u8).collect();
        for len in 0..300 {
            for off in 0..8 {
                let mut dst = vec![0xEEu8; len + 16];
                copy(&mut dst[off..off + len], &src[..len]);
                assert_eq!(&dst[off..off + len], &src[..len], "{len} {off}");
                assert!(dst[..off].iter().all(|&b| b == 0xEE), "{len} {off}");
                assert!(dst[off + len..].iter().all(|&b| b == 0xEE), "{len} {off}");
            }
        }
        let mut short = [0u8; 4];
        copy(&mut short, b"abcdef");
        assert_eq!(&short, b"abcd");
    }
}
