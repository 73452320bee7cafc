//! [`Pipeline`]: commands whose stdout feeds the next one's stdin through
//! one kernel pipe per link (`a | b | c`), and the [`Pipefail`] rule that
//! says which stage's failure the pipeline reports.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use crate::child::Child;
use crate::error::{Step, Who};
use crate::forward::Forwarded;
use crate::stream::{Chunks, Events, Output};
use crate::sys::pipe;
use crate::{Command, Error, ExitStatus, Signal, Stdio};

/// Which stage's status a [`Pipeline`] reports (its
/// [`status`](crate::Chunks::status), the [`Event::Exit`](crate::Event::Exit),
/// [`Output::status`], and the stage an exit error names). Every stage's
/// own status is kept as well ([`Chunks::stage_statuses`]).
///
/// A stage *fails* when its status is not
/// [`success`](ExitStatus::success) (its own
/// [`success_exit_codes`](Command::success_exit_codes) count).
///
/// | rule | reports | shell |
/// |---|---|---|
/// | [`Rightmost`](Pipefail::Rightmost) (default) | the rightmost stage that failed, else success | bash/zsh/ksh `set -o pipefail`; duct's pipes give the same answer |
/// | [`RightmostIgnoringSigpipe`](Pipefail::RightmostIgnoringSigpipe) | the same, but a stage other than the last that was killed by SIGPIPE counts as a success | |
/// | [`Last`](Pipefail::Last) | the last stage, whatever the others did | POSIX `sh` without `pipefail` |
///
/// duct checks the right side of a pipe first and the left side only when
/// the right succeeded; applied to `a | b | c` (duct nests it as
/// `(a | b) | c`) that is the rightmost failure, as here.
///
/// ```
/// use procession::{Command, Pipefail};
/// let mut p = Command::shell("exit 3").pipe(&Command::new("cat"));
/// assert_eq!(p.output()?.status.code(), Some(3)); // the default: Rightmost
/// assert!(p.pipefail(Pipefail::Last).output()?.status.success());
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Pipefail {
    /// The status of the rightmost stage that failed; success when every
    /// stage succeeded (bash's `pipefail`).
    #[default]
    Rightmost,
    /// As [`Rightmost`](Pipefail::Rightmost), but a stage before the last
    /// that SIGPIPE killed counts as a success: the stage after it stopped
    /// reading on purpose (`yes | head -n 1`).
    RightmostIgnoringSigpipe,
    /// The last stage's status only (plain `sh`).
    Last,
}

impl Pipefail {
    /// The index of the stage whose status is reported.
    fn reported(self, statuses: &[ExitStatus]) -> usize {
        let last = statuses.len() - 1;
        let forgiven = |i: usize, s: &ExitStatus| {
            self == Pipefail::RightmostIgnoringSigpipe
                && i != last
                && s.signal() == Some(Signal::PIPE)
        };
        let failed = |(i, s): &(usize, &ExitStatus)| !s.success() && !forgiven(*i, s);
        match self {
            Pipefail::Last => last,
            _ => statuses
                .iter()
                .enumerate()
                .rev()
                .find(failed)
                .map_or(last, |(i, _)| i),
        }
    }
}

/// Commands connected stdout to stdin, like the shell's `a | b | c`.
///
/// Each link is one kernel pipe made by procession (close-on-exec, 1 MiB
/// when allowed): the stages write and read it directly, nothing is copied
/// through this process, and this process keeps no descriptor of it once
/// the stages have started. Each stage is an ordinary child spawned with
/// its own command's settings: environment, working directory, stderr
/// (inherited by default; `Stdio::null()`, a file, `Stdio::to_stdout()`
/// into the next stage…), process group and stop sequence.
///
/// - The **first** stage's stdin is its command's [`input`](Command::input)
///   (any source) or [`stdin`](Command::stdin) setting, `/dev/null` by
///   default.
/// - The **last** stage's stdout is what the pipeline runs as:
///   [`stream`](Pipeline::stream), [`events`](Pipeline::events),
///   [`output`](Pipeline::output), [`run`](Pipeline::run),
///   [`status`](Pipeline::status), [`forward_stdout`](Pipeline::forward_stdout)
///   and, with the `tokio` feature, their `_async` forms; its stderr is as
///   for the same method on a [`Command`].
/// - The pipeline's status follows [`Pipefail`]; every stage's status is
///   available once it has ended ([`Chunks::stage_statuses`],
///   [`Events::stage_statuses`], [`Forwarded::stages`]).
/// - A [`timeout`](Pipeline::timeout) applies to every stage. Dropping the
///   stream early stops every stage (the last after its
///   [`drop_timeout`](Command::drop_timeout), the others at once), each
///   with its stop sequence, so what a stage started is stopped with it
///   when the stage leads its own process group (the default outside a
///   terminal: see [the rule](crate#terminals-and-servers-the-process-group-rule)).
/// - When a stage cannot start, the stages already started are stopped and
///   the error names the one that failed.
/// - The pipeline ends when every stage has ended, as in a shell: once the
///   last stage is done, the others are waited for (a stage upstream of a
///   stage that stopped reading gets EPIPE or SIGPIPE, since no other
///   process holds the link; one that neither writes nor exits is waited
///   for until a [`timeout`](Pipeline::timeout) or a drop stops it).
/// - An async input (`input_stream`…, feature `tokio`) on the first stage
///   needs the async methods; a task of the runtime then drives that stage
///   (dropping the pipeline aborts it, which stops the stage after its
///   drop timeout).
///
/// ```
/// use procession::{Command, Pipeline};
/// // printf 'b\na\nc\n' | sort | head -n 2
/// let out = Pipeline::new([
///     Command::new("printf").arg(r"b\na\nc\n").clone(),
///     Command::new("sort"),
///     Command::new("head").args(["-n", "2"]).clone(),
/// ])
/// .stream()?
/// .collect_string()?;
/// assert_eq!(out, "a\nb\n");
///
/// // The same with `pipe`, and an input for the first stage.
/// let out = Command::new("sort").input(["b\n", "a\n", "c\n"])
///     .pipe(&Command::new("head").args(["-n", "2"]))
///     .run()?;
/// assert_eq!(out.stdout, b"a\nb\n");
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Pipeline {
    stages: Vec<Command>,
    pipefail: Pipefail,
    timeout: Option<Duration>,
}

impl Command {
    /// A [`Pipeline`] of this command and `next`: this command's stdout
    /// feeds `next`'s stdin. Chain more stages with [`Pipeline::pipe`].
    ///
    /// ```
    /// use procession::Command;
    /// let out = Command::new("echo").arg("hello")
    ///     .pipe(&Command::new("tr").args(["a-z", "A-Z"]))
    ///     .pipe(&Command::new("rev"))
    ///     .stream()?.collect_string()?;
    /// assert_eq!(out, "OLLEH\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pipe(&self, next: &Command) -> Pipeline {
        Pipeline::new([self.clone(), next.clone()])
    }
}

/// The upstream stages of a running pipeline (every stage but the last),
/// held by the last stage's stream until it ends.
pub(crate) struct Upstream {
    /// The first stage when an async input feeds it (async API only): a
    /// task of the runtime drives its event stream. The children are then
    /// the stages after it.
    #[cfg(feature = "tokio")]
    fed: Option<FedStage>,
    children: Vec<Child>,
    /// Per upstream stage, first to last (the fed stage included).
    statuses: Vec<Option<ExitStatus>>,
    /// An input error of the first stage (it carries the stage's status).
    input_error: Option<Error>,
    pipefail: Pipefail,
    #[cfg(feature = "tokio")]
    watches: Vec<Option<crate::tokio::wait::Watch>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("children", &self.children)
            .field("statuses", &self.statuses)
            .finish_non_exhaustive()
    }
}

/// How a pipeline ended.
#[derive(Debug)]
pub(crate) struct Conclusion {
    /// The reported status (see [`Pipefail`]).
    pub(crate) status: ExitStatus,
    /// Every stage's status, first to last.
    pub(crate) stages: Vec<ExitStatus>,
    /// When the reported failure is an upstream stage's: who it is, and
    /// which stage of how many.
    pub(crate) failed: Option<(Who, String)>,
    /// The first stage's input error, if its input failed.
    pub(crate) input_error: Option<Error>,
}

impl Conclusion {
    /// The exit error for an unsuccessful end, naming the stage whose
    /// status is reported: `last` (with its stderr `tail`) or an upstream
    /// one.
    pub(crate) fn exit_error(&self, last: &Who, tail: Option<bytes::Bytes>) -> Error {
        match &self.failed {
            Some((who, detail)) => Error::exit(who, self.status, None).with_detail(detail.clone()),
            None => Error::exit(last, self.status, tail),
        }
    }
}

/// A first stage fed by an async input, driven by a task of the runtime
/// (its `AsyncEvents`, whose stdout is the first link); aborting the task
/// drops the stream, which stops the stage.
#[cfg(feature = "tokio")]
pub(crate) struct FedStage {
    who: Who,
    task: tokio::task::JoinHandle<Result<ExitStatus, Error>>,
}

#[cfg(feature = "tokio")]
impl FedStage {
    fn start(who: Who, mut events: crate::tokio::AsyncEvents) -> FedStage {
        let lost = who.clone();
        let task = tokio::spawn(async move {
            let mut input_error = None;
            while let Some(event) = events.next_event().await {
                match event {
                    // An input error comes first, carrying the status.
                    Ok(crate::Event::Exit(s)) => return input_error.map_or(Ok(s), Err),
                    Ok(_) => {}
                    Err(e) if e.exit_status().is_some() => input_error = Some(e),
                    Err(e) => return Err(e),
                }
            }
            Err(Error::os(
                &lost,
                Step::Wait,
                std::io::Error::other("the event stream ended without the exit"),
            ))
        });
        FedStage { who, task }
    }
}

#[cfg(feature = "tokio")]
impl Drop for FedStage {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    fn new(children: Vec<Child>, pipefail: Pipefail) -> Upstream {
        let n = children.len();
        Upstream {
            #[cfg(feature = "tokio")]
            fed: None,
            children,
            statuses: vec![None; n],
            input_error: None,
            pipefail,
            #[cfg(feature = "tokio")]
            watches: (0..n).map(|_| None).collect(),
        }
    }

    /// A fed first stage, then `rest` (the upstream stages after it, if
    /// any).
    #[cfg(feature = "tokio")]
    fn fed_first(fed: FedStage, rest: Option<Upstream>, pipefail: Pipefail) -> Upstream {
        let mut up = rest.unwrap_or_else(|| Upstream::new(Vec::new(), pipefail));
        up.fed = Some(fed);
        up.statuses.insert(0, None);
        up
    }

    /// How many stages come before the children (the fed stage).
    fn offset(&self) -> usize {
        #[cfg(feature = "tokio")]
        if self.fed.is_some() {
            return 1;
        }
        0
    }

    /// Who upstream stage `i` is.
    fn who(&self, i: usize) -> Who {
        #[cfg(feature = "tokio")]
        if let (Some(fed), 0) = (&self.fed, i) {
            return fed.who.clone();
        }
        self.children[i - self.offset()].process().program().clone()
    }

    /// Records the end of upstream stage `i` from its handle's wait.
    fn record(&mut self, i: usize, result: Result<ExitStatus, Error>) -> Result<(), Error> {
        match result {
            Ok(s) => self.statuses[i] = Some(s),
            Err(e) => match e.exit_status() {
                // The input failed; the stage's status came with it.
                Some(s) => {
                    self.statuses[i] = Some(s);
                    self.input_error.get_or_insert(e);
                }
                None => return Err(e),
            },
        }
        Ok(())
    }

    /// Waits (blocking) for every upstream stage, then applies the rule.
    pub(crate) fn finish(&mut self, last: ExitStatus) -> Result<Conclusion, Error> {
        // Only the async API makes a fed stage.
        debug_assert_eq!(self.offset(), 0);
        for j in 0..self.children.len() {
            if self.statuses[j].is_none() {
                let r = self.children[j].wait();
                self.record(j, r)?;
            }
        }
        Ok(self.conclude(last))
    }

    /// Polls every upstream stage until all have ended, then applies the
    /// rule (the async form of [`finish`](Upstream::finish)).
    #[cfg(feature = "tokio")]
    pub(crate) fn poll_finish(
        &mut self,
        cx: &mut std::task::Context<'_>,
        last: ExitStatus,
    ) -> std::task::Poll<Result<Conclusion, Error>> {
        use std::future::Future;
        use std::task::Poll;
        let mut pending = false;
        let offset = self.offset();
        if let (Some(fed), None) = (&mut self.fed, self.statuses[0]) {
            match std::pin::Pin::new(&mut fed.task).poll(cx) {
                Poll::Pending => pending = true,
                Poll::Ready(Ok(r)) => self.record(0, r)?,
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(Error::os(
                        &fed.who,
                        Step::Wait,
                        std::io::Error::other(format!("the task driving the first stage: {e}")),
                    )));
                }
            }
        }
        for j in 0..self.children.len() {
            let i = j + offset;
            if self.statuses[i].is_some() {
                continue;
            }
            let process = self.children[j].process().clone();
            let watch =
                self.watches[j].get_or_insert_with(|| crate::tokio::wait::Watch::new(&process));
            match watch.poll_wait(cx, &process) {
                Poll::Pending => pending = true,
                // Finished: the handle's wait returns at once, with the
                // input thread's result.
                Poll::Ready(Ok(_)) => {
                    let r = self.children[j].wait();
                    self.record(i, r)?;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            }
        }
        if pending {
            return Poll::Pending;
        }
        Poll::Ready(Ok(self.conclude(last)))
    }

    fn conclude(&mut self, last: ExitStatus) -> Conclusion {
        let mut stages: Vec<ExitStatus> =
            self.statuses.iter().map(|s| s.expect("waited")).collect();
        stages.push(last);
        let i = self.pipefail.reported(&stages);
        let failed = (i + 1 < stages.len() && !stages[i].success()).then(|| {
            (
                self.who(i),
                format!("stage {} of {} of a pipeline", i + 1, stages.len()),
            )
        });
        Conclusion {
            status: stages[i],
            stages,
            failed,
            input_error: self.input_error.take(),
        }
    }
}

/// The end of a stream: the pipeline's conclusion when it has upstream
/// stages (waiting for them), else the single command's.
pub(crate) fn conclude(
    upstream: &mut Option<Upstream>,
    last: ExitStatus,
) -> Result<Conclusion, Error> {
    match upstream {
        Some(up) => up.finish(last),
        None => Ok(Conclusion {
            status: last,
            stages: vec![last],
            failed: None,
            input_error: None,
        }),
    }
}

impl Pipeline {
    /// A pipeline of `stages`, first to last. An empty one is refused when
    /// it is run.
    ///
    /// ```
    /// use procession::{Command, Pipeline};
    /// let words = Pipeline::new([Command::shell("echo b a"), Command::new("wc").arg("-w").clone()])
    ///     .stream()?.collect_string()?;
    /// assert_eq!(words.trim(), "2");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn new(stages: impl IntoIterator<Item = Command>) -> Pipeline {
        Pipeline {
            stages: stages.into_iter().collect(),
            pipefail: Pipefail::default(),
            timeout: None,
        }
    }

    /// Adds `next` as the last stage: the current last stage's stdout
    /// feeds it.
    ///
    /// ```
    /// use procession::{Command, Pipeline};
    /// let mut p = Pipeline::new([Command::new("echo").arg("x").clone()]);
    /// p.pipe(&Command::new("cat")).pipe(&Command::new("cat"));
    /// assert_eq!(p.stream()?.collect_string()?, "x\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pipe(&mut self, next: &Command) -> &mut Pipeline {
        self.stages.push(next.clone());
        self
    }

    /// The rule for the pipeline's status ([`Pipefail::Rightmost`] by
    /// default, as bash's `pipefail`).
    ///
    /// ```
    /// use procession::{Command, Pipefail};
    /// // `yes` is killed by SIGPIPE once `head` has what it needs.
    /// let out = Command::new("yes").pipe(&Command::new("head").args(["-n", "1"]))
    ///     .pipefail(Pipefail::RightmostIgnoringSigpipe).run()?;
    /// assert_eq!(out.stdout, b"y\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pipefail(&mut self, rule: Pipefail) -> &mut Pipeline {
        self.pipefail = rule;
        self
    }

    /// The longest each stage may run ([`Command::timeout`] on every
    /// stage, overriding theirs); a stage that times out is stopped and its
    /// status says so ([`ExitStatus::timed_out`]).
    ///
    /// ```
    /// use procession::Command;
    /// use std::time::Duration;
    /// let status = Command::new("sleep").arg("10").pipe(&Command::new("cat"))
    ///     .timeout(Duration::from_millis(100)).status()?;
    /// assert!(status.timed_out());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn timeout(&mut self, timeout: Duration) -> &mut Pipeline {
        self.timeout = Some(timeout);
        self
    }

    /// The stages, first to last.
    ///
    /// ```
    /// use procession::Command;
    /// let p = Command::new("a").pipe(&Command::new("b"));
    /// assert_eq!(p.stages().len(), 2);
    /// assert_eq!(p.stages()[1].get_program(), "b");
    /// ```
    pub fn stages(&self) -> &[Command] {
        &self.stages
    }

    /// Refuses what cannot be wired: no stage, an input or stdin on a
    /// stage other than the first, a stdout on a stage other than the
    /// last, a piped stderr nobody would read.
    fn check(&self, async_first: bool) -> Result<(), Error> {
        let n = self.stages.len();
        let Some(first) = self.stages.first() else {
            return Err(Error::invalid(
                &Who::new(OsStr::new("pipeline"), []),
                "an empty pipeline: give it at least one command",
            ));
        };
        if n > 1 && !async_first && first.input.as_ref().is_some_and(|i| i.is_async()) {
            return Err(first.invalid(
                "stage 1 of a pipeline: an async input (input_stream, input_async_read, \
                 input_async_fn) needs the async API (stream_async, events_async, \
                 output_async, run_async, forward_stdout_async)",
            ));
        }
        for (i, stage) in self.stages.iter().enumerate() {
            let at = format!("stage {} of {n} of a pipeline", i + 1);
            if i > 0 && (stage.input.is_some() || stage.stdin.is_some()) {
                return Err(stage.invalid(format!(
                    "{at}: its stdin is the previous stage's stdout; remove its input/stdin setting"
                )));
            }
            if i + 1 < n {
                if stage.stdout.is_some() {
                    return Err(stage.invalid(format!(
                        "{at}: its stdout is the next stage's stdin; remove its stdout setting"
                    )));
                }
                if stage.stderr.as_ref().is_some_and(|s| s.is_piped()) {
                    return Err(stage.invalid(format!(
                        "{at}: nobody would read its piped stderr; use Stdio::inherit(), \
                         Stdio::null(), a file, Stdio::to_stdout() (into the next stage) or the \
                         last stage's stderr"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Starts every stage but the last, wired with one pipe per link, and
    /// returns them with the last stage's command (its stdin the last
    /// link's read end, which the caller closes by dropping the command
    /// once it has started).
    pub(crate) fn start_upstream(&self) -> Result<(Option<Upstream>, Command), Error> {
        self.check(false)?;
        let n = self.stages.len();
        let mut children = Vec::with_capacity(n - 1);
        let mut prev: Option<OwnedFd> = None;
        for stage in &self.stages[..n - 1] {
            let (r, w) =
                pipe::pipe().map_err(|e| Error::os(stage.program.as_os_str(), Step::Pipe, e))?;
            if let Some(cap) = stage.pipe_capacity {
                // Best effort, as for a piped stdout.
                let _ = pipe::set_pipe_size(w.as_fd(), cap);
            }
            let mut c = stage.clone();
            c.stdout(Stdio::from(w));
            match prev.take() {
                Some(fd) => {
                    c.stdin(Stdio::from(fd));
                }
                None if c.stdin.is_none() && c.input.is_none() => {
                    c.stdin(Stdio::null());
                }
                None => {}
            }
            if let Some(t) = self.timeout {
                c.timeout(t);
            }
            // On an error, the stages started so far are dropped, which
            // stops them.
            children.push(c.spawn()?);
            // `c` (dropped here) held this process's copies of the link's
            // write end and of the previous link's read end.
            prev = Some(r);
        }
        let mut last = self.stages[n - 1].clone();
        if let Some(fd) = prev {
            last.stdin(Stdio::from(fd));
        }
        if let Some(t) = self.timeout {
            last.timeout(t);
        }
        let upstream = (n > 1).then(|| Upstream::new(children, self.pipefail));
        Ok((upstream, last))
    }

    /// [`start_upstream`](Pipeline::start_upstream) for the async API: a
    /// first stage fed by an async input is started as an event stream
    /// (its stdout the first link) that a task of the runtime drives.
    #[cfg(feature = "tokio")]
    pub(crate) fn start_upstream_async(&self) -> Result<(Option<Upstream>, Command), Error> {
        let n = self.stages.len();
        let fed = n > 1 && self.stages[0].input.as_ref().is_some_and(|i| i.is_async());
        if !fed {
            return self.start_upstream();
        }
        self.check(true)?;
        let first = &self.stages[0];
        let (r, w) =
            pipe::pipe().map_err(|e| Error::os(first.program.as_os_str(), Step::Pipe, e))?;
        if let Some(cap) = first.pipe_capacity {
            let _ = pipe::set_pipe_size(w.as_fd(), cap);
        }
        let mut c = first.clone();
        c.stdout(Stdio::from(w));
        if let Some(t) = self.timeout {
            c.timeout(t);
        }
        let events = c.events_async()?;
        // Closes this process's copy of the link's write end.
        drop(c);
        let fed = FedStage::start(first.who(), events);
        let mut rest = Pipeline {
            stages: self.stages[1..].to_vec(),
            pipefail: self.pipefail,
            timeout: self.timeout,
        };
        rest.stages[0].stdin(Stdio::from(r));
        // On an error, `fed` is dropped: its task is aborted, which stops
        // the first stage.
        let (up, last) = rest.start_upstream()?;
        Ok((Some(Upstream::fed_first(fed, up, self.pipefail)), last))
    }

    /// Starts every stage and streams the last one's stdout, checked by the
    /// [`Pipefail`] rule: when the pipeline does not succeed, the last item
    /// is an [`Exit`](crate::ErrorKind::Exit) error naming the stage whose
    /// status is reported. As [`Command::stream`] otherwise (back-pressure,
    /// [`lines`](Chunks::lines), early drop).
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) for an empty
    /// pipeline or a setting the wiring overrides (a stdout on a stage
    /// other than the last, an input or stdin on a stage other than the
    /// first, a piped stderr on a stage other than the last); otherwise as
    /// [`Command::stream`] for whichever stage failed to start (the others
    /// are stopped).
    ///
    /// ```
    /// use procession::{Command, ErrorKind};
    /// let mut chunks = Command::new("printf").arg(r"b\na\n")
    ///     .pipe(&Command::shell("sort; exit 3"))
    ///     .pipe(&Command::new("cat"))
    ///     .stream()?;
    /// assert_eq!(chunks.next().unwrap()?, "a\nb\n");
    /// let err = chunks.next().unwrap().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Exit);
    /// assert_eq!(err.exit_status().unwrap().code(), Some(3)); // the middle stage's
    /// let codes: Vec<_> = chunks.stage_statuses().iter().map(|s| s.code()).collect();
    /// assert_eq!(codes, [Some(0), Some(3), Some(0)]);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stream(&self) -> Result<Chunks, Error> {
        let (upstream, last) = self.start_upstream()?;
        Ok(last.stream()?.with_upstream(upstream))
    }

    /// Starts every stage and yields the last one's output as tagged
    /// events, as [`Command::events`]; the [`Event::Exit`](crate::Event::Exit)
    /// carries the status the [`Pipefail`] rule reports, and
    /// [`Events::stage_statuses`] every stage's.
    ///
    /// # Errors
    ///
    /// As [`stream`](Pipeline::stream).
    ///
    /// ```
    /// use procession::{Command, Event, Stdio};
    /// let events: Vec<Event> = Command::new("echo").arg("hi")
    ///     .pipe(Command::shell("cat; echo err >&2; exit 2").stderr(Stdio::piped()))
    ///     .events()?.collect::<Result<_, _>>()?;
    /// assert_eq!(events[0], Event::Stdout("hi\n".into()));
    /// assert_eq!(events[1], Event::Stderr("err\n".into()));
    /// assert!(matches!(events[2], Event::Exit(s) if s.code() == Some(2)));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn events(&self) -> Result<Events, Error> {
        let (upstream, last) = self.start_upstream()?;
        Ok(last.events()?.with_upstream(upstream))
    }

    /// Runs every stage to the end and collects the last one's stdout and
    /// stderr (both piped unless its command says otherwise), as
    /// [`Command::output`]; [`Output::status`] is the status the
    /// [`Pipefail`] rule reports. A failing status is not an error here.
    ///
    /// # Errors
    ///
    /// As [`stream`](Pipeline::stream), and I/O errors.
    ///
    /// ```
    /// use procession::Command;
    /// let out = Command::new("echo").arg("x").pipe(&Command::shell("cat; exit 4")).output()?;
    /// assert_eq!((out.stdout.as_slice(), out.status.code()), (&b"x\n"[..], Some(4)));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn output(&self) -> Result<Output, Error> {
        let (upstream, last) = self.start_upstream()?;
        let events = last.output_events()?;
        // Close this process's copy of the last link now.
        drop(last);
        events.with_upstream(upstream).collect_output()
    }

    /// [`output`](Pipeline::output), checked: when the pipeline does not
    /// succeed by the [`Pipefail`] rule, an [`Exit`](crate::ErrorKind::Exit)
    /// error naming the stage whose status is reported, carrying the
    /// [`Output`] ([`Error::output`]).
    ///
    /// # Errors
    ///
    /// As [`output`](Pipeline::output), and the exit error above.
    ///
    /// ```
    /// use procession::{Command, ErrorKind};
    /// let err = Command::shell("echo x; exit 5").pipe(&Command::new("cat")).run().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Exit);
    /// assert_eq!(err.exit_status().unwrap().code(), Some(5));
    /// assert_eq!(err.output().unwrap().stdout, b"x\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn run(&self) -> Result<Output, Error> {
        let (upstream, last) = self.start_upstream()?;
        let events = last.output_events()?;
        drop(last);
        let mut events = events.with_upstream(upstream);
        let output = events.collect_output_mut()?;
        match events.failure(&output) {
            None => Ok(output),
            Some(e) => Err(e.with_output(output)),
        }
    }

    /// Runs every stage to the end, the last one's stdout and stderr as its
    /// command says (inherited by default), and returns the status the
    /// [`Pipefail`] rule reports (a failure is not an error here).
    ///
    /// # Errors
    ///
    /// As [`stream`](Pipeline::stream), and an input that failed (as
    /// [`Command::status`]).
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let status = Command::new("true").pipe(Command::new("false").stdout(Stdio::null())).status()?;
    /// assert_eq!(status.code(), Some(1));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn status(&self) -> Result<ExitStatus, Error> {
        let (mut upstream, last) = self.start_upstream()?;
        let mut child = last.spawn()?;
        drop(last);
        let status = child.wait()?;
        let c = conclude(&mut upstream, status)?;
        match c.input_error {
            Some(e) => Err(e),
            None => Ok(c.status),
        }
    }

    /// Starts every stage and moves the last one's stdout into `sink` (a
    /// file, a socket, a pipe: any descriptor) until it ends, with
    /// `splice(2)` (no copy through this process) where the kernel allows
    /// it, else through a buffer; then waits for every stage. Checked by
    /// the [`Pipefail`] rule. See [`Command::forward_stdout`].
    ///
    /// # Errors
    ///
    /// As [`stream`](Pipeline::stream); a failing write to `sink` (a closed
    /// socket, a full disk) is a [`Step::Write`] error (every stage is then
    /// stopped); an unsuccessful pipeline is an
    /// [`Exit`](crate::ErrorKind::Exit) error naming the reported stage.
    ///
    /// ```
    /// use procession::Command;
    /// # let path = std::env::temp_dir().join(format!("procession-doc-pfwd-{}", std::process::id()));
    /// let file = std::fs::File::create(&path)?;
    /// let done = Command::new("seq").arg("3").pipe(&Command::new("tac")).forward_stdout(&file)?;
    /// assert_eq!(done.bytes, 6);
    /// assert_eq!(std::fs::read(&path)?, b"3\n2\n1\n");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forward_stdout(&self, sink: impl AsFd) -> Result<Forwarded, Error> {
        self.forward_with(sink.as_fd(), true)
    }

    pub(crate) fn forward_with(
        &self,
        sink: std::os::fd::BorrowedFd<'_>,
        splice: bool,
    ) -> Result<Forwarded, Error> {
        self.check_forwardable()?;
        let (mut upstream, mut last) = self.start_upstream()?;
        let mut child = crate::forward::spawn_forwarded(&mut last)?;
        drop(last);
        let moved = crate::forward::forward_child(&mut child, sink, splice)?;
        let status = child.wait()?;
        let c = conclude(&mut upstream, status)?;
        crate::forward::finish(c, child.process().program(), moved)
    }

    /// The last stage's stdout is forwarded: it must not be set, and its
    /// stderr must not be a pipe nobody reads.
    pub(crate) fn check_forwardable(&self) -> Result<(), Error> {
        if let Some(last) = self.stages.last() {
            last.check_stdout_streamable("forward_stdout()")?;
            if last.stderr.as_ref().is_some_and(|s| s.is_piped()) {
                return Err(last.invalid(
                    "nobody would read its piped stderr while its stdout is forwarded; use \
                     Stdio::inherit(), Stdio::null() or a file",
                ));
            }
        }
        Ok(())
    }
}
