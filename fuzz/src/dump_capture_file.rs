//! The checks behind the `dump_capture_file` fuzz target: `pgm-dump` on a whole capture file
//! (pcap or pcapng, told apart by the magic number, read by `pcap-file`, every frame through
//! `decode_frame` and the printer: `tools::dump::dump_reader`), shared with the corpus replay
//! test (`tools/tests/fuzz_corpus.rs`, which includes this file by path).
//!
//! The input is the file.
//!
//! - A dump that succeeds prints one line per PGM packet or unsupported note and counts them;
//!   every JSON line is an object whose frame number is within the frames read, in order.
//! - The file cut short prints a prefix of the lines of the whole file (then fails or stops):
//!   nothing is printed from bytes that are not there.
//! - `--count N` prints exactly the lines up to the Nth PGM packet, and stops there.
//! - For a classic pcap, the dump agrees with `records_from_pcap_reader` (the other reader of
//!   the same format): both fail, or print the same records (unless the link type is one
//!   `pgm-dump` refuses).

use std::path::Path;

use tools::dump::{dump_reader, records_from_pcap_reader, DumpError, Output, Summary};

const PORTS: [u16; 2] = [3055, 7500];

/// Runs every check on `data`; panics (a fuzz finding) when one fails.
pub(crate) fn check(data: &[u8]) {
    let (whole, lines) = dump(data, None);
    if let Ok(s) = &whole {
        assert_eq!(
            lines.len() as u64,
            s.pgm + s.unsupported,
            "lines printed vs {s:?}"
        );
        assert!(s.malformed <= s.pgm && s.filtered == 0, "{s:?}");
        let mut last = 0;
        for l in &lines {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let frame = v["frame"].as_u64().expect("a frame number");
            assert!(
                frame >= last.max(1) && frame <= s.frames,
                "frame {frame} after {last} of {}",
                s.frames
            );
            last = frame;
        }
    }

    // Cut short (where the last byte says): a prefix of the lines.
    if let Some(&b) = data.last() {
        let cut = data.len() - 1 - usize::from(b) * data.len() / 256;
        let (_, part) = dump(&data[..cut], None);
        assert!(
            part.len() <= lines.len() && part[..] == lines[..part.len()],
            "the file cut at {cut} of {} bytes printed other lines",
            data.len()
        );
    }

    // --count N: the lines up to the Nth PGM packet (unsupported notes are not counted).
    let is_pgm = |l: &String| {
        let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
        v["type"] != "UNSUPPORTED"
    };
    let n = lines.iter().filter(|l| is_pgm(l)).count() / 2;
    let upto = if n == 0 {
        0
    } else {
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| is_pgm(l))
            .nth(n - 1)
            .map_or(lines.len(), |(i, _)| i + 1)
    };
    let (counted, first) = dump(data, Some(n as u64));
    assert_eq!(first[..], lines[..upto], "--count {n}");
    assert!(
        counted.is_ok(),
        "--count {n} stops before anything that failed"
    );

    // A classic pcap: the same records as the other reader.
    let pcap_magic = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
    ];
    if data.len() >= 4 && pcap_magic.iter().any(|m| data[..4] == m[..]) {
        let other = records_from_pcap_reader(data, &PORTS);
        match (&whole, &other) {
            (Ok(_), Ok(recs)) => {
                let want: Vec<String> = recs.iter().map(|r| r.to_json().to_string()).collect();
                assert_eq!(lines, want, "pgm-dump and records_from_pcap_reader");
            }
            (Err(DumpError::LinkType { .. }), _) | (Err(_), Err(_)) => {}
            (w, o) => panic!(
                "pgm-dump {w:?} but records_from_pcap_reader {:?}",
                o.as_ref().map(Vec::len)
            ),
        }
    }
}

/// Dumps `data` as JSON lines; returns the result and the lines printed (also on an error).
fn dump(data: &[u8], count: Option<u64>) -> (Result<Summary, DumpError>, Vec<String>) {
    let opts = Output {
        udp_ports: PORTS.to_vec(),
        json: true,
        count,
        ..Output::default()
    };
    let mut out = Vec::new();
    let r = dump_reader(Path::new("fuzz.pcap"), data, &opts, &mut out);
    let text = String::from_utf8(out).expect("UTF-8 output");
    (r, text.lines().map(str::to_owned).collect())
}
