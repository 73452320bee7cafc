//! exec-port's request decoding on arbitrary bytes: frames read from the
//! stream, each payload checked and decoded as a term, the request taken
//! apart and a `run`'s options turned into a Command (nothing is started).
//! Never a panic, an abort or a hang; every reply the decoding produces
//! encodes to a frame of at most 65535 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procession_cli::exec_port::options::{self, Defaults, Instr};
use procession_cli::exec_port::term;

fuzz_target!(|data: &[u8]| {
    let defaults = Defaults {
        shell: "/bin/sh".into(),
        ..Defaults::default()
    };
    let mut input = data;
    // The first frames as the port reads them; then the whole input as
    // one payload, so that the term decoder sees every byte string.
    let mut payloads = Vec::new();
    while let Ok(Some(p)) = term::read_frame(&mut input) {
        payloads.push(p);
    }
    payloads.push(data.to_vec());
    for payload in payloads {
        let Ok(t) = term::decode(&payload) else {
            continue;
        };
        let req = options::request(&t);
        let reply = match req.instr {
            Ok(Instr::Run(cmd, opts)) => options::run_spec(&cmd, &opts, &defaults).err(),
            Ok(Instr::Manage(_, opts)) => options::manage_spec(&opts).err(),
            Ok(_) => None,
            Err(reason) => Some(reason),
        };
        if let Some(reason) = reply {
            let mut frame = Vec::new();
            term::push_frame(&mut frame, &options::error_reply(req.trans, reason));
            assert!(frame.len() <= 2 + term::MAX_FRAME);
        }
    }
});
