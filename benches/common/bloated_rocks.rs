//! A hostile LuaRocks server's rocks: each small on the wire and huge
//! unpacked (a module plus one file of zeros under `copy_directories`),
//! for the tests and the bench of what a refresh costs.
//!
//! Compressing gigabytes for every rock would take minutes, so the
//! deflate stream of the zeros is made once and put after each rock's own
//! tar headers: the headers are deflated and sync-flushed (which ends on a
//! byte boundary and leaves the stream open), the shared zeros follow as
//! the final block, and the gzip trailer's CRC is combined from both
//! parts. Any gzip reader reads the result as one ordinary tar.gz.

#![allow(dead_code)] // the tests and the bench each use their own part

use std::io::Write as _;
use std::path::Path;

use flate2::write::DeflateEncoder;
use flate2::{Compression, Crc};

/// The deflated tail every rock shares: `len` zero bytes (the file's
/// contents and the tar's end blocks), as a final deflate block.
pub struct Zeros {
    deflated: Vec<u8>,
    crc: Crc,
}

impl Zeros {
    /// Deflates `len` zeros once.
    pub fn new(len: u64) -> Zeros {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
        let mut crc = Crc::new();
        let chunk = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            encoder.write_all(&chunk[..n]).unwrap();
            crc.update(&chunk[..n]);
            left -= n as u64;
        }
        Zeros {
            deflated: encoder.finish().unwrap(),
            crc,
        }
    }

    /// How many zeros it unpacks to.
    fn len(&self) -> u64 {
        u64::from(self.crc.amount())
    }
}

/// A `.src.rock` of module `package` (`mod_x`, version 1-1) whose
/// `res/zeros` unpacks to `zeros` minus the tar's 1024 end bytes.
pub fn rock(package: &str, zeros: &Zeros) -> Vec<u8> {
    rock_with_zeros_at(package, zeros, &format!("{package}/res/zeros"))
}

/// [`rock`] with its zeros outside the module's directory (in the
/// source tree's `elsewhere/`), where reading the rock skips them.
pub fn rock_zeros_outside(package: &str, zeros: &Zeros) -> Vec<u8> {
    rock_with_zeros_at(package, zeros, "elsewhere/zeros")
}

/// A rock whose zeros are the file `zeros_at` of the source tree.
fn rock_with_zeros_at(package: &str, zeros: &Zeros, zeros_at: &str) -> Vec<u8> {
    let dir = format!("Community-Modules-abc/{package}");
    let file = |path: &str, size: u64| {
        let mut header = tar::Header::new_gnu();
        header
            .set_path(format!("Community-Modules-abc/{path}"))
            .unwrap();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        header
    };
    let code = format!("module:log('info', '{package} loaded')\n");
    let mut tar = tar::Builder::new(Vec::new());
    tar.append(
        &file(&format!("{package}/{package}.lua"), code.len() as u64),
        code.as_bytes(),
    )
    .unwrap();
    // The zeros' size is a multiple of 512, so no padding follows them and
    // the tar's two end blocks are zeros too.
    let size = zeros.len() - 1024;
    assert_eq!(size % 512, 0, "the zeros must end on a tar block");
    let mut prefix = tar.get_ref().clone();
    prefix.extend_from_slice(file(zeros_at, size).as_bytes());

    let mut deflate = DeflateEncoder::new(Vec::new(), Compression::fast());
    deflate.write_all(&prefix).unwrap();
    deflate.flush().unwrap();
    let mut crc = Crc::new();
    crc.update(&prefix);
    crc.combine(&zeros.crc);
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gz.extend_from_slice(deflate.get_ref());
    gz.extend_from_slice(&zeros.deflated);
    gz.extend_from_slice(&crc.sum().to_le_bytes());
    gz.extend_from_slice(&crc.amount().to_le_bytes());

    let rockspec = format!(
        "package = \"{package}\"\nversion = \"1-1\"\n\
         source = {{ url = \"http://127.0.0.1:1/abc.tar.gz\", dir = \"{dir}\", file = \"prosody-modules-abc.tar.gz\" }}\n\
         description = {{ summary = \"{package}\" }}\ndependencies = {{ \"lua >= 5.1\" }}\n\
         build = {{ type = \"builtin\", modules = {{ {package} = \"{package}.lua\" }}, copy_directories = {{ \"res\" }} }}\n"
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file(format!("{package}-1-1.rockspec"), options)
        .unwrap();
    zip.write_all(rockspec.as_bytes()).unwrap();
    zip.start_file("prosody-modules-abc.tar.gz", options)
        .unwrap();
    zip.write_all(&gz).unwrap();
    zip.finish().unwrap().into_inner()
}

/// Writes a LuaRocks server into `dir`: `count` such rocks, `mod_bloat_N`,
/// and the manifest listing them. Returns the rocks' total size on the wire.
pub fn server(dir: &Path, count: usize, zeros: &Zeros) -> u64 {
    let mut manifest = String::from("commands = {}\nmodules = {}\nrepository = {\n");
    let mut wire = 0;
    for i in 0..count {
        let package = format!("mod_bloat_{i}");
        let bytes = rock(&package, zeros);
        wire += bytes.len() as u64;
        std::fs::write(dir.join(format!("{package}-1-1.src.rock")), bytes).unwrap();
        manifest += &format!("   {package} = {{ [\"1-1\"] = {{ {{ arch = \"src\" }} }} }},\n");
    }
    manifest += "}\n";
    std::fs::write(dir.join("manifest"), manifest).unwrap();
    wire
}
