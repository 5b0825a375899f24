//! Git metadata recorded on experiments (`repo_info`): which fields to collect, and collecting
//! them from the working directory with the `git` command.
//!
//! Collection is off unless a setting asks for it: with no per-call setting the organisation's
//! applies, and with neither nothing is collected. Merging a call setting with the
//! organisation's: `all` yields the other, `none` wins, two `some` intersect their fields.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The fields of [`RepoInfo`], in the order the API lists them.
pub const REPO_INFO_FIELDS: [&str; 9] = [
    "commit",
    "branch",
    "tag",
    "dirty",
    "author_name",
    "author_email",
    "commit_message",
    "commit_time",
    "git_diff",
];

/// Git facts about the code that ran an experiment. Fields that were not collected (or not
/// allowed by the settings) are `None` and sent as `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoInfo {
    /// The `HEAD` commit hash.
    pub commit: Option<String>,
    /// The current branch.
    pub branch: Option<String>,
    /// A tag pointing at `HEAD`.
    pub tag: Option<String>,
    /// Whether the working tree has uncommitted changes.
    pub dirty: Option<bool>,
    /// The author of `HEAD`.
    pub author_name: Option<String>,
    /// The author's e-mail.
    pub author_email: Option<String>,
    /// The commit message of `HEAD`.
    pub commit_message: Option<String>,
    /// The commit time of `HEAD` (ISO 8601).
    pub commit_time: Option<String>,
    /// `git diff HEAD` when the tree is dirty.
    pub git_diff: Option<String>,
}

/// Which git fields to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitMetadataSettings {
    /// Every field.
    All,
    /// Only these fields (names from [`REPO_INFO_FIELDS`]).
    Some(Vec<String>),
    /// Nothing.
    None,
}

impl GitMetadataSettings {
    /// Parses the API's `{collect: "all"|"some"|"none", fields: […]}`; `None` for anything else.
    pub fn from_json(value: &Value) -> Option<GitMetadataSettings> {
        match value.get("collect")?.as_str()? {
            "all" => Some(GitMetadataSettings::All),
            "none" => Some(GitMetadataSettings::None),
            "some" => Some(GitMetadataSettings::Some(
                value
                    .get("fields")
                    .and_then(Value::as_array)
                    .map(|fields| {
                        fields
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            )),
            _ => None,
        }
    }

    /// The API's JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            GitMetadataSettings::All => serde_json::json!({"collect": "all"}),
            GitMetadataSettings::None => serde_json::json!({"collect": "none"}),
            GitMetadataSettings::Some(fields) => {
                serde_json::json!({"collect": "some", "fields": fields})
            }
        }
    }

    /// The setting in force given a per-call setting and the organisation's.
    pub fn merge(
        call: Option<&GitMetadataSettings>,
        org: Option<&GitMetadataSettings>,
    ) -> GitMetadataSettings {
        use GitMetadataSettings::{All, None as Off, Some as Only};
        match (call, org) {
            (None, None) => Off,
            (Some(one), None) | (None, Some(one)) => one.clone(),
            (Some(Off), _) | (_, Some(Off)) => Off,
            (Some(All), Some(other)) | (Some(other), Some(All)) => other.clone(),
            (Some(Only(a)), Some(Only(b))) => {
                Only(a.iter().filter(|f| b.contains(f)).cloned().collect())
            }
        }
    }

    fn allows(&self, field: &str) -> bool {
        match self {
            GitMetadataSettings::All => true,
            GitMetadataSettings::None => false,
            GitMetadataSettings::Some(fields) => fields.iter().any(|f| f == field),
        }
    }
}

/// Runs `git args…` in `dir`; its trimmed stdout when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Collects the fields `settings` allow from the repository containing `dir`. `None` when
/// nothing is to be collected, `git` is missing, or `dir` is not in a repository.
pub fn collect_repo_info(dir: &Path, settings: &GitMetadataSettings) -> Option<RepoInfo> {
    if *settings == GitMetadataSettings::None {
        return None;
    }
    git(dir, &["rev-parse", "--is-inside-work-tree"]).filter(|s| s == "true")?;
    let want = |field: &str| settings.allows(field);
    let show = |format: &str| git(dir, &["log", "-1", &format!("--format={format}"), "HEAD"]);
    let dirty = git(dir, &["status", "--porcelain"]).map(|s| !s.is_empty());
    Some(RepoInfo {
        commit: want("commit")
            .then(|| git(dir, &["rev-parse", "HEAD"]))
            .flatten(),
        branch: want("branch")
            .then(|| git(dir, &["rev-parse", "--abbrev-ref", "HEAD"]))
            .flatten()
            .filter(|b| b != "HEAD"),
        tag: want("tag")
            .then(|| git(dir, &["describe", "--tags", "--exact-match", "HEAD"]))
            .flatten(),
        dirty: want("dirty").then_some(dirty).flatten(),
        author_name: want("author_name").then(|| show("%an")).flatten(),
        author_email: want("author_email").then(|| show("%ae")).flatten(),
        commit_message: want("commit_message").then(|| show("%B")).flatten(),
        commit_time: want("commit_time").then(|| show("%cI")).flatten(),
        git_diff: (want("git_diff") && dirty == Some(true))
            .then(|| git(dir, &["diff", "HEAD"]))
            .flatten(),
    })
}

/// Commits between `HEAD` and where it forked from its upstream branch (newest first, at most
/// 1,000): the server uses them to pick a default baseline. Empty without an upstream.
pub fn ancestor_commits(dir: &Path) -> Vec<String> {
    let Some(base) = git(dir, &["merge-base", "HEAD", "@{upstream}"]) else {
        return Vec::new();
    };
    git(dir, &["rev-list", "--max-count=1000", &base])
        .map(|list| list.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use GitMetadataSettings::{All, None as Off, Some as Only};

    fn only(fields: &[&str]) -> GitMetadataSettings {
        Only(fields.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn merging_follows_the_reference_rules() {
        assert_eq!(GitMetadataSettings::merge(None, None), Off);
        assert_eq!(GitMetadataSettings::merge(Some(&All), None), All);
        assert_eq!(GitMetadataSettings::merge(None, Some(&All)), All);
        assert_eq!(GitMetadataSettings::merge(Some(&All), Some(&Off)), Off);
        assert_eq!(GitMetadataSettings::merge(Some(&Off), Some(&All)), Off);
        let some = only(&["commit", "branch"]);
        assert_eq!(GitMetadataSettings::merge(Some(&All), Some(&some)), some);
        assert_eq!(GitMetadataSettings::merge(Some(&some), Some(&All)), some);
        assert_eq!(
            GitMetadataSettings::merge(Some(&some), Some(&only(&["branch", "tag"]))),
            only(&["branch"])
        );
    }

    #[test]
    fn settings_round_trip_through_json() {
        for s in [All, Off, only(&["commit"])] {
            assert_eq!(GitMetadataSettings::from_json(&s.to_json()), Some(s));
        }
        assert_eq!(
            GitMetadataSettings::from_json(&serde_json::json!({"collect": "x"})),
            None
        );
    }

    #[test]
    fn collection_outside_a_repository_or_when_off_gives_nothing() {
        let dir = std::env::temp_dir().join(format!("bt-git-none-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(collect_repo_info(&dir, &Off), None);
        // A temporary directory is normally outside any repository.
        if git(&dir, &["rev-parse", "--is-inside-work-tree"]).is_none() {
            assert_eq!(collect_repo_info(&dir, &All), None);
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn collection_reads_a_repository_and_respects_field_settings() {
        if git(Path::new("."), &["--version"]).is_none() {
            eprintln!("skipping: git is not installed");
            return;
        }
        let dir = std::env::temp_dir().join(format!("bt-git-repo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str]| {
            let ok = Command::new("git")
                .args(args)
                .current_dir(&dir)
                .env("GIT_AUTHOR_NAME", "Cap Tester")
                .env("GIT_AUTHOR_EMAIL", "cap@example.com")
                .env("GIT_COMMITTER_NAME", "Cap Tester")
                .env("GIT_COMMITTER_EMAIL", "cap@example.com")
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        run(&["init", "-q", "-b", "main"]);
        std::fs::write(dir.join("a.txt"), "one\n").unwrap();
        run(&["add", "a.txt"]);
        run(&["commit", "-q", "-m", "first commit"]);
        run(&["tag", "v0.1"]);
        let info = collect_repo_info(&dir, &All).unwrap();
        assert_eq!(info.branch.as_deref(), Some("main"));
        assert_eq!(info.tag.as_deref(), Some("v0.1"));
        assert_eq!(info.dirty, Some(false));
        assert_eq!(info.author_name.as_deref(), Some("Cap Tester"));
        assert_eq!(info.commit_message.as_deref(), Some("first commit"));
        assert_eq!(info.commit.as_ref().map(String::len), Some(40));
        assert_eq!(info.git_diff, None);
        std::fs::write(dir.join("a.txt"), "two\n").unwrap();
        let info = collect_repo_info(&dir, &only(&["dirty", "git_diff"])).unwrap();
        assert_eq!(info.dirty, Some(true));
        assert!(info.git_diff.unwrap().contains("+two"));
        assert_eq!(info.commit, None);
        assert!(ancestor_commits(&dir).is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}
