//! Compiles Kiln's C sources (../../src/*.c) into OUT_DIR/libkiln.a and links it.
//!
//! No `cc` crate (crates.io may be unreachable): the system C compiler is run
//! directly.  Environment:
//!   CC           the C compiler (default `cc`; may carry arguments, e.g. `ccache gcc`)
//!   AR           the archiver (default `ar`)
//!   KILN_CFLAGS  extra flags appended to every compile (e.g. `-DKILN_VALGRIND=1`)
//!
//! KILN_OVERRIDE is deliberately *not* defined: the C library's malloc stays in
//! place and Rust reaches Kiln through the kiln_* entry points only.  Replacing
//! malloc as well would make every C allocation in the process (glibc's own,
//! other crates' C code) depend on how this crate happens to be linked.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Flags shared with the CMake build (CMakeLists.txt, target kiln_objects),
/// minus KILN_OVERRIDE.  -fno-builtin: the compiler must not turn Kiln's own
/// code into calls to the allocator it implements.  -ftls-model=initial-exec:
/// the fast path reads its thread-local heap without a __tls_get_addr call.
const CFLAGS: &[&str] = &[
    "-O2",
    "-fPIC",
    "-fno-builtin",
    "-ftls-model=initial-exec",
    "-fvisibility=hidden",
    "-std=gnu11",
];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    let src = root.join("src");
    let include = root.join("include");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", include.display());
    println!("cargo:rerun-if-changed={}", manifest.join("csrc").display());
    for var in ["CC", "AR", "KILN_CFLAGS"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let mut sources = c_files(&src);
    if sources.is_empty() {
        panic!(
            "no C sources in {}: the kiln crate is built from the Kiln repository",
            src.display()
        );
    }
    // The ABI probe the crate's tests compare its #[repr(C)] mirrors against.
    sources.extend(c_files(&manifest.join("csrc")));

    let (cc, cc_args) = tool("CC", "cc");
    let extra: Vec<String> = env::var("KILN_CFLAGS")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let debug = env::var("DEBUG").is_ok_and(|d| d == "true");

    // A fresh object directory: a source deleted from src/ must not live on
    // in the archive.
    let obj_dir = out.join("kiln-obj");
    let _ = fs::remove_dir_all(&obj_dir);
    fs::create_dir_all(&obj_dir).expect("create the object directory");

    let mut objects = Vec::with_capacity(sources.len());
    for source in &sources {
        let stem = source.file_stem().expect("a .c file has a stem").to_string_lossy();
        let dir = source
            .parent()
            .and_then(Path::file_name)
            .map(|d| d.to_string_lossy().into_owned());
        // src/ and csrc/ could hold files of the same name.
        let object = obj_dir.join(format!("{}-{stem}.o", dir.unwrap_or_default()));
        let mut cmd = Command::new(&cc);
        cmd.args(&cc_args)
            .args(CFLAGS)
            .args(debug.then_some("-g"))
            .arg("-I")
            .arg(&include)
            .arg("-I")
            .arg(&src)
            .args(&extra)
            .arg("-c")
            .arg(source)
            .arg("-o")
            .arg(&object);
        run(&mut cmd);
        objects.push(object);
    }

    let lib = out.join("libkiln.a");
    let _ = fs::remove_file(&lib); // `ar r` adds to an archive; start from nothing
    let (ar, ar_args) = tool("AR", "ar");
    run(Command::new(&ar).args(&ar_args).arg("rcs").arg(&lib).args(&objects));

    println!("cargo:rustc-link-search=native={}", out.display());
    // +whole-archive: every object is linked, as in libkiln.so, so code that is
    // reached only through a constructor or a thread-exit hook is not dropped
    // by the linker for want of a reference.
    println!("cargo:rustc-link-lib=static:+whole-archive=kiln");
    println!("cargo:rustc-link-lib=pthread");
    // For crates that depend on this one (`links = "kiln"`): DEP_KILN_INCLUDE.
    println!("cargo:include={}", include.display());
}

/// The .c files directly in `dir`, sorted so that builds are reproducible.
fn c_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c") && p.is_file())
        .collect();
    files.sort();
    files
}

/// A tool named by an environment variable that may carry arguments.
fn tool(var: &str, default: &str) -> (OsString, Vec<String>) {
    let value = env::var(var).ok().filter(|v| !v.trim().is_empty());
    let value = value.as_deref().unwrap_or(default);
    let mut words = value.split_whitespace();
    let program = words.next().unwrap_or(default).into();
    (program, words.map(str::to_owned).collect())
}

fn run(cmd: &mut Command) {
    let output = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !output.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Compiler warnings: show them, without failing the build.
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        println!("cargo:warning={line}");
    }
}
