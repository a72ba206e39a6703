// SPDX-License-Identifier: GPL-2.0
//! The shared library's soname: `libmoreram.so.1` (the file cargo writes is renamed by
//! `make install`).

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmoreram.so.1");
}
