//! Running variants round-robin (A B C A B C …) and collecting samples.

use std::io;

use crate::results::Table;

/// The shared settings of a run.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub quick: bool,
    pub reps: usize,
    pub helpers: crate::util::Helpers,
}

/// One contender: a name and a closure that performs one measurement and
/// returns its value in the table's unit.
pub struct Variant<'a> {
    pub name: String,
    pub run: Box<dyn FnMut() -> io::Result<f64> + 'a>,
}

impl<'a> Variant<'a> {
    pub fn new(name: impl Into<String>, run: impl FnMut() -> io::Result<f64> + 'a) -> Variant<'a> {
        Variant {
            name: name.into(),
            run: Box::new(run),
        }
    }
}

/// Runs every variant once per repetition, in the same order each time, and
/// adds a row per variant to `table`. Failures are reported on stderr and in
/// the row's note.
pub fn interleave(table: &mut Table, reps: usize, variants: &mut [Variant<'_>]) {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut errors: Vec<Option<String>> = vec![None; variants.len()];
    for rep in 0..reps {
        for (i, v) in variants.iter_mut().enumerate() {
            if errors[i].is_some() {
                continue;
            }
            match (v.run)() {
                Ok(x) => {
                    eprintln!(
                        "  [{}] rep {}/{} {:<40} {}",
                        table.id,
                        rep + 1,
                        reps,
                        v.name,
                        crate::results::fmt_num(x)
                    );
                    samples[i].push(x);
                }
                Err(e) => {
                    eprintln!("  [{}] {} failed: {e}", table.id, v.name);
                    errors[i] = Some(format!("failed: {e}"));
                }
            }
        }
    }
    for (i, v) in variants.iter().enumerate() {
        match &errors[i] {
            Some(e) if samples[i].is_empty() => table.push_na(&v.name, e),
            Some(e) => {
                table.push(&v.name, std::mem::take(&mut samples[i]));
                table.note_row(&v.name, e);
            }
            None => table.push(&v.name, std::mem::take(&mut samples[i])),
        }
    }
}

/// Turns any error into `io::Error`.
pub fn ioe<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

/// A current-thread tokio runtime.
pub fn tokio_rt() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
