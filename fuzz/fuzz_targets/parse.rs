//! `Command::parse` on any text: never a panic; a line it accepts gives
//! words that, quoted again, parse back to the same program and arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procession::Command;

fuzz_target!(|line: &str| {
    let Ok(cmd) = Command::parse(line) else { return };
    let words: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|w| w.to_str().expect("parse keeps UTF-8").to_owned())
        .collect();
    let again = shell_words::join(&words);
    let cmd2 = Command::parse(&again).expect("quoted words parse");
    let words2: Vec<String> = std::iter::once(cmd2.get_program())
        .chain(cmd2.get_args())
        .map(|w| w.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(words, words2);
});
