//! Where a new worktree's directory lands on disk.
//!
//! ext4 without a journal skips every inode freed in the last minutes when it allocates one
//! (`recently_deleted` in `fs/ext4/ialloc.c`), one inode-table lookup each, from the start of
//! the block group. Worktree directories are made below a `T` parent
//! ([`crate::checkout::make_parents`]), so each lands in a block group of its own, chosen from a
//! hash of its name — and a group emptied minutes ago by a cleanup is as eligible as a fresh
//! one. Every file of a checkout there then pays that scan: creates of 8 worktrees of 20k files
//! took up to 10 s here where, with this module, they take 2.6–4.3 s.
//!
//! So the directory is made under a temporary name first (`.baton-new.<admin>.<k>`: another
//! name, another group) and its `.git` file created in it, timed: a few µs in a usable group,
//! hundreds in one full of recently freed inodes. A slow one is set aside and another name
//! tried, up to [`TRIES`]; the fastest is renamed into place (`RENAME_NOREPLACE`: a path that
//! appeared meanwhile is never replaced). The ones set aside are removed once every worktree of
//! the create is placed (while they exist, the groups they hold count a directory more, which
//! the allocator avoids). A create killed in between leaves directories holding at most a
//! `.git` file of its own admin dir; the journal's rollback removes them ([`remove_debris`]).
//! On a file system without the problem the first name is taken: one extra rename.
//!
//! A fast first file does not prove the group good, so the checkout also watches what each
//! worktree's files cost and moves the rest through a stage directory when they turn slow
//! ([`Stager`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Names tried per worktree.
pub const TRIES: usize = 6;

/// A `.git` file created slower than this is taken as a sign of a group full of recently freed
/// inodes (measured here: 15–40 µs in a fresh group, 360 µs in an emptied one).
const SLOW: Duration = Duration::from_micros(150);

/// The temporary name of try `k` for the worktree of admin dir `admin_name`.
pub fn temp_name(admin_name: &str, k: usize) -> String {
    format!(".baton-new.{admin_name}.{k}")
}

/// Directories set aside by [`Placer::make`]; removed on [`Placer::release`] or drop.
#[derive(Default)]
pub struct Placer {
    rejected: Vec<PathBuf>,
}

impl Placer {
    /// Make the directory `path` (which must not exist) holding a `.git` file with `gitfile`,
    /// in a block group that is not full of recently freed inodes where one can be found.
    /// `AlreadyExists` when `path` exists.
    pub fn make(&mut self, path: &Path, admin_name: &str, gitfile: &str) -> std::io::Result<()> {
        self.make_with(path, admin_name, gitfile, SLOW)
    }

    /// [`Placer::make`] taking a `.git` create slower than `slow` as a bad group.
    fn make_with(
        &mut self,
        path: &Path,
        admin_name: &str,
        gitfile: &str,
        slow: Duration,
    ) -> std::io::Result<()> {
        let parent = path.parent().unwrap_or(Path::new("."));
        let mut best: Option<(Duration, PathBuf)> = None;
        for k in 0..TRIES {
            let tmp = parent.join(temp_name(admin_name, k));
            match std::fs::create_dir(&tmp) {
                Ok(()) => {}
                // debris of an earlier create: not ours to touch here
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    self.set_aside(best.map(|b| b.1));
                    return Err(e);
                }
            }
            let took = match write_dotgit(&tmp, gitfile) {
                Ok(t) => t,
                Err(e) => {
                    remove_debris(&tmp, gitfile);
                    self.set_aside(best.map(|b| b.1));
                    return Err(e);
                }
            };
            let better = best.as_ref().is_none_or(|(t, _)| took < *t);
            if better {
                self.set_aside(best.take().map(|b| b.1));
                best = Some((took, tmp));
            } else {
                self.set_aside(Some(tmp));
            }
            if took < slow {
                break;
            }
        }
        let Some((_, chosen)) = best else {
            // every temporary name taken by debris: make it where it goes
            std::fs::create_dir(path)?;
            return write_dotgit(path, gitfile).map(|_| ()).inspect_err(|_| {
                remove_debris(path, gitfile);
            });
        };
        match rename_new(&chosen, path) {
            Ok(()) => Ok(()),
            Err(e) => {
                remove_debris(&chosen, gitfile);
                if e.kind() != std::io::ErrorKind::Unsupported {
                    return Err(e);
                }
                // no safe rename here: make it where it goes, wherever that lands
                std::fs::create_dir(path)?;
                write_dotgit(path, gitfile).map(|_| ()).inspect_err(|_| {
                    remove_debris(path, gitfile);
                })
            }
        }
    }

    fn set_aside(&mut self, dir: Option<PathBuf>) {
        self.rejected.extend(dir);
    }

    /// Remove the directories set aside (each holds only its `.git` file).
    pub fn release(&mut self) {
        for d in self.rejected.drain(..) {
            let _ = std::fs::remove_file(d.join(".git"));
            let _ = std::fs::remove_dir(&d);
        }
    }
}

impl Drop for Placer {
    fn drop(&mut self) {
        self.release();
    }
}

/// Create `dir/.git` exclusively with `text`; how long the create itself took.
fn write_dotgit(dir: &Path, text: &str) -> std::io::Result<Duration> {
    let p = dir.join(".git");
    let start = Instant::now();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)?;
    let took = start.elapsed();
    f.write_all(text.as_bytes())?;
    Ok(took)
}

/// Rename `from` to `to`, which must not exist (never replaced, not even an empty directory).
/// `Unsupported` where the file system has no `RENAME_NOREPLACE`.
pub(crate) fn rename_new(from: &Path, to: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "no RENAME_NOREPLACE",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Remove `dir` if it holds nothing, or nothing but a `.git` file whose text is a prefix of
/// `gitfile` (a placement directory of ours, maybe cut short). True if removed.
pub fn remove_debris(dir: &Path, gitfile: &str) -> bool {
    if !is_debris(dir, gitfile) {
        return false;
    }
    let _ = std::fs::remove_file(dir.join(".git"));
    std::fs::remove_dir(dir).is_ok()
}

/// Does `dir` (not a symlink) hold nothing, or nothing but a regular `.git` file whose text is
/// a prefix of `gitfile`?
pub fn is_debris(dir: &Path, gitfile: &str) -> bool {
    if !dir.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return false;
    }
    let Ok(read) = std::fs::read_dir(dir) else {
        return false;
    };
    let names: Vec<_> = read.flatten().map(|e| e.file_name()).collect();
    match names.as_slice() {
        [] => true,
        [only] if only == ".git" => {
            let p = dir.join(".git");
            p.symlink_metadata().is_ok_and(|m| m.is_file())
                && std::fs::read_to_string(&p).is_ok_and(|t| gitfile.starts_with(&t))
        }
        _ => false,
    }
}

/// Stage directories made per worktree at most.
pub const STAGES: usize = 4;

/// A worktree's files cost more kernel CPU than this each (beyond what their bytes cost) when
/// created in a block group full of recently freed inodes (measured here: 100–500 µs each
/// against 15–30 µs).
const SLOW_FILE: Duration = Duration::from_micros(80);

/// The name of stage directory `k` of the worktree whose directory is named `worktree`.
pub fn stage_name(worktree: &str, k: usize) -> String {
    format!(".baton-stage.{worktree}.{k}")
}

/// Where a checkout creates one worktree's files. A first file created fast says little (a
/// group may hold fresh inodes first and recently freed ones after them), so the checkout
/// watches what each chunk of files cost: when creating them in the worktree's own groups
/// turns slow, the rest are created in a stage directory made under another name beside the
/// worktree (another group) and renamed into place; a stage that turns slow too is followed by
/// another, up to [`STAGES`]. A stage holds the worktree's `.git` text as its own `.git` (so
/// a killed create's rollback can prove it is this worktree's) and files named by number.
pub struct Stager {
    root: PathBuf,
    slow: Duration,
    gitfile: String,
    state: std::sync::Mutex<Stages>,
    next: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Stages {
    made: Vec<PathBuf>,
    /// Stage in use: an index into `made`.
    current: Option<usize>,
}

/// Which stage a chunk of files was written with: `None` for the worktree itself.
pub type Generation = Option<usize>;

impl Stager {
    /// For the new worktree `root`, whose `.git` file is already written.
    pub fn new(root: &Path) -> Self {
        Self::with_slow(root, SLOW_FILE)
    }

    /// [`Stager::new`], taking files that cost more than `slow` each as slow.
    pub fn with_slow(root: &Path, slow: Duration) -> Self {
        Stager {
            root: root.to_owned(),
            slow,
            gitfile: std::fs::read_to_string(root.join(".git")).unwrap_or_default(),
            state: std::sync::Mutex::new(Stages::default()),
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn stages(&self) -> std::sync::MutexGuard<'_, Stages> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stage files go through now (`None`: straight into the worktree).
    pub fn current(&self) -> (Generation, Option<PathBuf>) {
        let st = self.stages();
        (st.current, st.current.map(|i| st.made[i].clone()))
    }

    /// Create the file `rel` of the worktree with `write`, through `stage` if given. Returns
    /// what `write` returned for the file at its final place.
    pub fn create<T>(
        &self,
        stage: Option<&Path>,
        rel: &str,
        write: impl Fn(&Path) -> std::io::Result<T>,
        stat: impl Fn(&Path) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        let dest = self.root.join(rel);
        let Some(stage) = stage else {
            return write(&dest);
        };
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = stage.join(n.to_string());
        write(&tmp)?;
        match rename_new(&tmp, &dest) {
            Ok(()) => stat(&dest),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                if e.kind() == std::io::ErrorKind::Unsupported {
                    self.stages().current = None;
                    return write(&dest);
                }
                Err(e)
            }
        }
    }

    /// A chunk of `files` files (`bytes` in all) written with stage `used` took `cpu` of this
    /// thread's time: move on to a new stage if that was slow and nobody has yet.
    pub fn observe(&self, used: Generation, cpu: Duration, files: usize, bytes: usize) {
        if files == 0 {
            return;
        }
        // writing the bytes themselves: ~0.3 ns a byte into the page cache; allow 1
        let allowed = self.slow * files as u32 + Duration::from_nanos(bytes as u64);
        if cpu <= allowed {
            return;
        }
        let mut st = self.stages();
        if st.current != used || st.made.len() >= STAGES || self.gitfile.is_empty() {
            return;
        }
        let (Some(parent), Some(name)) = (self.root.parent(), self.root.file_name()) else {
            return;
        };
        let name = name.to_string_lossy();
        for k in st.made.len()..STAGES {
            let dir = parent.join(stage_name(&name, k));
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            if write_dotgit(&dir, &self.gitfile).is_err() {
                let _ = std::fs::remove_file(dir.join(".git"));
                let _ = std::fs::remove_dir(&dir);
                return;
            }
            st.made.push(dir);
            st.current = Some(st.made.len() - 1);
            return;
        }
    }

    /// Remove the stages (every file has left them): their `.git`, then the directory.
    pub fn finish(&self) {
        let mut st = self.stages();
        st.current = None;
        for d in st.made.drain(..) {
            let _ = std::fs::remove_file(d.join(".git"));
            let _ = std::fs::remove_dir(&d);
        }
    }

    /// How many stage directories this worktree needed so far.
    pub fn made(&self) -> usize {
        self.stages().made.len()
    }
}

impl Drop for Stager {
    fn drop(&mut self) {
        // a checkout that failed: what is left in a stage is checkout output of ours
        let st = self.stages();
        let made = st.made.clone();
        drop(st);
        for d in made {
            remove_stage(&d, &self.gitfile);
        }
    }
}

/// Remove the stage directory `dir` if it is one: a directory (not a link) holding a regular
/// `.git` file with exactly `gitfile` and nothing but files named by number. True if removed.
pub fn remove_stage(dir: &Path, gitfile: &str) -> bool {
    if !is_stage(dir, gitfile) {
        return false;
    }
    if let Ok(read) = std::fs::read_dir(dir) {
        for e in read.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    std::fs::remove_dir(dir).is_ok()
}

/// See [`remove_stage`].
pub fn is_stage(dir: &Path, gitfile: &str) -> bool {
    if !dir.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return false;
    }
    let dotgit = dir.join(".git");
    if !dotgit.symlink_metadata().is_ok_and(|m| m.is_file())
        || std::fs::read_to_string(&dotgit).ok().as_deref() != Some(gitfile)
    {
        return false;
    }
    let Ok(read) = std::fs::read_dir(dir) else {
        return false;
    };
    read.flatten().all(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name == ".git"
            || (!name.is_empty()
                && name.bytes().all(|b| b.is_ascii_digit())
                && e.file_type().is_ok_and(|t| !t.is_dir()))
    })
}

/// This thread's CPU time so far.
pub fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "gitdir: /repo/.git/worktrees/a1\n";

    /// `parent/name`, made, holding `files` (name, text).
    fn dir_with(parent: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = parent.join(name);
        std::fs::create_dir(&d).unwrap();
        for (f, t) in files {
            std::fs::write(d.join(f), t).unwrap();
        }
        d
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_fast_first_try_is_renamed_into_place_and_nothing_else_is_left() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a1");
        let mut placer = Placer::default();
        placer.make_with(&path, "a1", TEXT, Duration::MAX).unwrap();
        assert_eq!(names(tmp.path()), ["a1"]);
        assert_eq!(names(&path), [".git"]);
        assert_eq!(std::fs::read_to_string(path.join(".git")).unwrap(), TEXT);
    }

    #[test]
    fn slow_tries_are_set_aside_until_released_and_one_of_them_is_placed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a1");
        let mut placer = Placer::default();
        // every try counts as slow: all of them are made, the fastest is taken
        placer.make_with(&path, "a1", TEXT, Duration::ZERO).unwrap();
        let held = names(tmp.path());
        assert_eq!(held.len(), TRIES, "{held:?}");
        assert!(held.contains(&"a1".to_owned()), "{held:?}");
        assert!(
            held.iter()
                .filter(|n| *n != "a1")
                .all(|n| n.starts_with(".baton-new.a1.")),
            "{held:?}"
        );
        // the next worktree is placed while they are held
        placer
            .make_with(&tmp.path().join("a2"), "a2", TEXT, Duration::MAX)
            .unwrap();
        placer.release();
        assert_eq!(names(tmp.path()), ["a1", "a2"]);
        assert_eq!(std::fs::read_to_string(path.join(".git")).unwrap(), TEXT);
    }

    #[test]
    fn dropping_the_placer_releases_what_it_set_aside() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let mut placer = Placer::default();
            placer
                .make_with(&tmp.path().join("a1"), "a1", TEXT, Duration::ZERO)
                .unwrap();
        }
        assert_eq!(names(tmp.path()), ["a1"]);
    }

    #[test]
    fn an_existing_path_is_never_replaced_not_even_an_empty_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a1");
        std::fs::create_dir(&path).unwrap();
        let mut placer = Placer::default();
        let e = placer.make(&path, "a1", TEXT).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        drop(placer);
        assert_eq!(names(tmp.path()), ["a1"]);
        assert!(names(&path).is_empty());
    }

    #[test]
    fn directories_already_at_the_temporary_names_are_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        for k in 0..TRIES {
            let d = tmp.path().join(temp_name("a1", k));
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("notes.txt"), "theirs").unwrap();
        }
        let path = tmp.path().join("a1");
        let mut placer = Placer::default();
        placer.make(&path, "a1", TEXT).unwrap();
        drop(placer);
        assert_eq!(names(&path), [".git"]);
        for k in 0..TRIES {
            let d = tmp.path().join(temp_name("a1", k));
            assert_eq!(
                std::fs::read_to_string(d.join("notes.txt")).unwrap(),
                "theirs"
            );
        }
    }

    #[test]
    fn debris_is_only_an_empty_directory_or_one_holding_a_prefix_of_our_dotgit() {
        let tmp = tempfile::tempdir().unwrap();
        let mk = |name: &str, files: &[(&str, &str)]| dir_with(tmp.path(), name, files);
        assert!(is_debris(&mk("empty", &[]), TEXT));
        assert!(is_debris(&mk("whole", &[(".git", TEXT)]), TEXT));
        assert!(is_debris(&mk("cut", &[(".git", "gitdir: /re")]), TEXT));
        assert!(!is_debris(
            &mk("other", &[(".git", "gitdir: /elsewhere\n")]),
            TEXT
        ));
        assert!(!is_debris(
            &mk("more", &[(".git", TEXT), ("work.txt", "x")]),
            TEXT
        ));
        let linked = mk("linked", &[]);
        std::fs::write(tmp.path().join("target"), TEXT).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("target"), linked.join(".git")).unwrap();
        assert!(!is_debris(&linked, TEXT));
        std::os::unix::fs::symlink(tmp.path().join("whole"), tmp.path().join("dirlink")).unwrap();
        assert!(!is_debris(&tmp.path().join("dirlink"), TEXT));
        assert!(!remove_debris(&tmp.path().join("more"), TEXT));
        assert!(tmp.path().join("more/work.txt").exists());
        assert!(remove_debris(&tmp.path().join("cut"), TEXT));
        assert!(!tmp.path().join("cut").exists());
    }

    fn stager_in(tmp: &Path) -> Stager {
        let root = tmp.join("wt");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join(".git"), TEXT).unwrap();
        Stager::new(&root)
    }

    fn put(s: &Stager, stage: Option<&Path>, rel: &str) {
        s.create(
            stage,
            rel,
            |p| std::fs::write(p, rel),
            |p| std::fs::symlink_metadata(p).map(|_| ()),
        )
        .unwrap();
    }

    #[test]
    fn a_slow_chunk_moves_the_worktree_to_a_stage_once_per_generation() {
        let tmp = tempfile::tempdir().unwrap();
        let s = stager_in(tmp.path());
        // fast: 256 files in 1 ms
        s.observe(None, Duration::from_millis(1), 256, 256 * 900);
        assert_eq!(s.made(), 0);
        // big files are allowed their bytes
        s.observe(None, Duration::from_millis(30), 10, 50 << 20);
        assert_eq!(s.made(), 0);
        // slow: two threads saw it with the worktree itself; one stage is made
        s.observe(None, Duration::from_millis(100), 256, 256 * 900);
        s.observe(None, Duration::from_millis(100), 256, 256 * 900);
        assert_eq!(s.made(), 1);
        let (used, stage) = s.current();
        assert_eq!(used, Some(0));
        let stage = stage.unwrap();
        assert_eq!(
            stage.file_name().unwrap().to_string_lossy(),
            stage_name("wt", 0)
        );
        assert_eq!(std::fs::read_to_string(stage.join(".git")).unwrap(), TEXT);
        put(&s, Some(&stage), "d/a.txt");
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("wt/d/a.txt")).unwrap(),
            "d/a.txt"
        );
        assert!(is_stage(&stage, TEXT));
        // the stage turns slow too: the next one, up to STAGES
        for _ in 0..STAGES + 2 {
            let (used, _) = s.current();
            s.observe(used, Duration::from_millis(100), 256, 0);
        }
        assert_eq!(s.made(), STAGES);
        // a file whose place is taken is not replaced, and its staged copy does not stay
        let (_, last) = s.current();
        std::fs::write(tmp.path().join("wt/d/b.txt"), "theirs").unwrap();
        let e = s
            .create(
                last.as_deref(),
                "d/b.txt",
                |p| std::fs::write(p, "ours"),
                |_| Ok(()),
            )
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("wt/d/b.txt")).unwrap(),
            "theirs"
        );
        s.finish();
        assert_eq!(names(tmp.path()), ["wt"]);
    }

    #[test]
    fn a_failed_checkout_takes_its_stages_and_what_is_left_in_them_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let s = stager_in(tmp.path());
        s.observe(None, Duration::from_secs(1), 1, 0);
        let (_, stage) = s.current();
        let stage = stage.unwrap();
        std::fs::write(stage.join("7"), "half").unwrap();
        drop(s);
        assert_eq!(names(tmp.path()), ["wt"]);
    }

    #[test]
    fn a_stage_is_only_a_directory_with_our_dotgit_and_numbered_files() {
        let tmp = tempfile::tempdir().unwrap();
        let mk = |name: &str, files: &[(&str, &str)]| dir_with(tmp.path(), name, files);
        assert!(is_stage(
            &mk("ok", &[(".git", TEXT), ("0", "a"), ("12", "b")]),
            TEXT
        ));
        assert!(!is_stage(&mk("none", &[("0", "a")]), TEXT));
        assert!(!is_stage(&mk("cut", &[(".git", "gitdir: /re")]), TEXT));
        let named = mk("named", &[(".git", TEXT), ("notes.txt", "mine")]);
        assert!(!is_stage(&named, TEXT));
        assert!(!remove_stage(&named, TEXT));
        assert!(named.join("notes.txt").exists());
        let sub = mk("sub", &[(".git", TEXT)]);
        std::fs::create_dir(sub.join("3")).unwrap();
        assert!(!is_stage(&sub, TEXT));
        assert!(remove_stage(&tmp.path().join("ok"), TEXT));
        assert!(!tmp.path().join("ok").exists());
    }
}
