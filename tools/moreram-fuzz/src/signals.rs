//! Signals: the ones NOTIFY may ask for (each process counts them), and the supervisor's
//! watch for signals it never asked for (issue 10, item 3).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The signals the campaign asks NOTIFY for: every process handles them.
pub const NOTIFY_SIGNALS: &[i32] = &[
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGURG,
    35,
    36,
    40,
];

/// Signals received, and those the kernel sent (`SI_KERNEL`).
pub static RECEIVED: AtomicU64 = AtomicU64::new(0);
pub static FROM_KERNEL: AtomicU64 = AtomicU64::new(0);
pub static LAST_SIGNAL: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    RECEIVED.fetch_add(1, Relaxed);
    LAST_SIGNAL.store(sig as u64, Relaxed);
    // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
    if unsafe { (*info).si_code } == libc::SI_KERNEL {
        FROM_KERNEL.fetch_add(1, Relaxed);
    }
}

/// Counts the NOTIFY signals instead of dying of them; system calls they interrupt restart.
pub fn install_counting() {
    for &sig in NOTIFY_SIGNALS {
        // SAFETY: a handler that only touches atomics.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}
