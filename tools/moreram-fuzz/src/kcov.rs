//! Coverage of the module by KCOV (`CONFIG_KCOV`; the test kernel instruments only the
//! module): each thread that enables it collects the program counters its calls reached into
//! the board's set, and the supervisor maps them to the module's functions with
//! `/proc/kallsyms`.

use crate::board::board;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const KCOV_INIT_TRACE: u64 = 0x8008_6301;
const KCOV_ENABLE: u64 = 0x6364;
const KCOV_TRACE_PC: u64 = 0;
const WORDS: usize = 1 << 16;

pub struct Kcov {
    fd: i32,
    area: *const AtomicU64,
}

// SAFETY: the area is this thread's; a `Kcov` moves with the engine into its thread before it is
// enabled there.
unsafe impl Send for Kcov {}

impl Kcov {
    /// Opens KCOV for the calling thread; `None` when the kernel has none.
    pub fn open() -> Option<Kcov> {
        // SAFETY: plain syscalls on a descriptor and a mapping we own.
        unsafe {
            let fd = libc::open(
                c"/sys/kernel/debug/kcov".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return None;
            }
            if libc::ioctl(fd, KCOV_INIT_TRACE as _, WORDS as u64) != 0 {
                libc::close(fd);
                return None;
            }
            let p = libc::mmap(
                std::ptr::null_mut(),
                WORDS * 8,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            if p == libc::MAP_FAILED {
                libc::close(fd);
                return None;
            }
            Some(Kcov { fd, area: p.cast() })
        }
    }

    /// Starts collecting for the calling thread.
    pub fn enable(&self) -> bool {
        // SAFETY: our KCOV descriptor.
        let r = unsafe { libc::ioctl(self.fd, KCOV_ENABLE as _, KCOV_TRACE_PC) };
        if r == 0 {
            // SAFETY: word 0 of our area.
            unsafe { (*self.area).store(0, Relaxed) };
        }
        r == 0
    }

    /// Moves what was collected since the last call to the board.
    pub fn collect(&mut self) {
        // SAFETY: the area has WORDS words; the kernel writes word 0 last.
        unsafe {
            let n = ((*self.area).load(Relaxed) as usize).min(WORDS - 1);
            let b = board();
            for i in 1..=n {
                b.cover((*self.area.add(i)).load(Relaxed));
            }
            (*self.area).store(0, Relaxed);
        }
    }
}
