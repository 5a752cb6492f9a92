//! `baton_verify::gate::run` called as the run loop calls it: an explicit list of agents
//! (id, branch, write scope) and a given commit's tree for the tests.

use baton_git::RepoPaths;
use baton_report::CheckStatus;
use baton_tests::TestRepo;
use baton_verify::gate::{self, AgentSource, CheckKind, GateOptions, ListedAgent, TestsTree};

fn options(repo: &TestRepo) -> GateOptions {
    let mut opts = GateOptions::new(RepoPaths::discover(repo.path()).unwrap());
    opts.config.quick = Some(vec!["sh".into(), "test.sh".into()]);
    opts.scratch_dir = Some(repo.scratch("gate-scratch").join("merged-x"));
    opts
}

fn oid(repo: &TestRepo, rev: &str) -> git2::Oid {
    git2::Oid::from_str(repo.git(&["rev-parse", rev]).trim()).unwrap()
}

#[test]
fn tests_tree_commit_tests_that_commit_not_the_checkout() {
    let repo = TestRepo::new();
    repo.write("test.sh", "echo checkout-ok\nexit 0\n");
    repo.commit_all("passing tests");
    repo.git(&["checkout", "-q", "-b", "candidate"]);
    repo.write("test.sh", "echo candidate-broken\nexit 1\n");
    repo.commit_all("a candidate whose tests fail");
    repo.git(&["checkout", "-q", "main"]);

    let mut opts = options(&repo);
    opts.checks = vec![CheckKind::Tests];
    opts.tests_tree = TestsTree::Commit(oid(&repo, "candidate"));
    let rep = gate::run(&opts, &gate::NoProgress).unwrap();
    let tests = rep.checks.iter().find(|c| c.name == "tests").unwrap();
    assert_eq!(tests.status, CheckStatus::Fail, "{rep:#?}");
    let tested = rep.tested.as_ref().unwrap();
    assert_eq!(tested.kind, "commit");
    assert_eq!(
        tested.tree.as_deref(),
        Some(repo.git(&["rev-parse", "candidate^{tree}"]).trim())
    );
    // the checkout was neither tested nor touched
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert!(
        std::fs::read_to_string(repo.path().join("test.sh"))
            .unwrap()
            .contains("checkout-ok")
    );

    // the same call on main's commit passes: the verdict follows the commit
    opts.tests_tree = TestsTree::Commit(oid(&repo, "main"));
    let rep = gate::run(&opts, &gate::NoProgress).unwrap();
    assert!(rep.ok, "{rep:#?}");

    // a commit that is not in the repository is bad input, and nothing ran
    opts.tests_tree = TestsTree::Commit(git2::Oid::from_str(&"ab".repeat(20)).unwrap());
    let err = gate::run(&opts, &gate::NoProgress).unwrap_err();
    assert!(err.is_bad_input(), "{err}");
    assert!(err.to_string().contains(&"ab".repeat(20)), "{err}");
}

#[test]
fn listed_agents_are_checked_with_their_scopes_and_a_missing_branch_is_noted() {
    let repo = TestRepo::new();
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    for (branch, file) in [("work-a", "src/a.txt"), ("work-b", "docs/b.txt")] {
        repo.git(&["checkout", "-q", "-b", branch, &base]);
        repo.write(file, "work\n");
        repo.commit_all(&format!("{branch} writes {file}"));
    }
    repo.git(&["checkout", "-q", "main"]);

    let mut opts = options(&repo);
    opts.checks = vec![CheckKind::Conflicts];
    opts.base = Some(base);
    let listed = |id: &str, branch: &str, scope: &[&str]| ListedAgent {
        id: id.into(),
        branch: branch.into(),
        scope: scope.iter().map(|s| (*s).to_owned()).collect(),
        base: None,
    };
    opts.agents = AgentSource::List(vec![
        listed("alpha", "work-a", &["src/**"]),
        listed("beta", "work-b", &["src/**"]),
        listed("gamma", "work-c", &[]),
    ]);
    let rep = gate::run(&opts, &gate::NoProgress).unwrap();
    let c = rep.checks.iter().find(|c| c.name == "conflicts").unwrap();
    let codes: Vec<(&str, &[String])> = c
        .findings
        .iter()
        .map(|f| (f.code.as_str(), f.agents.as_slice()))
        .collect();
    // beta wrote outside its scope; alpha did not; the ids are the listed ones
    assert!(
        c.findings
            .iter()
            .any(|f| f.code == "scope_violation" && f.agents == ["beta"]),
        "{codes:?}"
    );
    assert!(
        !c.findings
            .iter()
            .any(|f| f.code == "scope_violation" && f.agents.iter().any(|a| a == "alpha")),
        "{codes:?}"
    );
    assert!(
        c.findings
            .iter()
            .any(|f| f.code == "agent_not_started" && f.message.contains("gamma")),
        "{codes:?}"
    );
    assert!(!rep.ok, "a scope violation fails the gate: {codes:?}");
}

/// An agent restarted on top of another's work (a replan) is measured from its own base: the
/// work it inherited is not counted as its own, so it is no scope violation of its own. A
/// base that is not a commit is bad input.
#[test]
fn a_listed_agent_with_its_own_base_is_measured_from_there() {
    let repo = TestRepo::new();
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    repo.git(&["checkout", "-q", "-b", "work-b", &base]);
    repo.write("b.txt", "b\n");
    repo.commit_all("b writes b.txt");
    repo.git(&["checkout", "-q", "-b", "work-c"]);
    repo.write("c.txt", "c\n");
    repo.commit_all("c, on b's work, writes c.txt");
    repo.git(&["checkout", "-q", "main"]);

    let run = |c_base: Option<&str>| {
        let mut opts = options(&repo);
        opts.checks = vec![CheckKind::Conflicts];
        opts.base = Some(base.clone());
        opts.agents = AgentSource::List(vec![
            ListedAgent {
                id: "b".into(),
                branch: "work-b".into(),
                scope: vec!["b.txt".into()],
                base: None,
            },
            ListedAgent {
                id: "c".into(),
                branch: "work-c".into(),
                scope: vec!["c.txt".into()],
                base: c_base.map(str::to_owned),
            },
        ]);
        gate::run(&opts, &gate::NoProgress)
    };
    let files_of_c = |rep: &baton_report::VerifyReport| {
        let c = rep.checks.iter().find(|c| c.name == "conflicts").unwrap();
        c.agents.iter().find(|a| a.id == "c").unwrap().files.clone()
    };

    // measured from the gate's base, c "wrote" b.txt too: outside its scope
    let rep = run(None).unwrap();
    assert_eq!(files_of_c(&rep), ["b.txt", "c.txt"]);
    assert!(!rep.ok, "{rep:#?}");
    // from where it started, only its own file, and the gate passes
    let rep = run(Some("work-b")).unwrap();
    assert_eq!(files_of_c(&rep), ["c.txt"]);
    assert!(rep.ok, "{rep:#?}");
    // a base that names nothing: bad input naming the agent
    let err = run(Some("no-such-rev")).unwrap_err();
    assert!(err.is_bad_input(), "{err}");
    assert!(err.to_string().contains("agent c"), "{err}");
}
