"""How the bash completion scripts find their shared helpers (completions/
mailhost-common.bash): beside themselves, both in the source tree and installed as the
package installs them (each tool's script under the tool's name, the helper under its
own), loaded by a loader that does what bash-completion's on-demand loader does. Without
the helper a script defines nothing; the helper itself completes no command."""

import os
import shutil
import subprocess
import unittest

import mhtest

TOOLS = ["mh-user", "mh-quota", "mh-purge", "mh-filter", "mh-list", "mh-serve"]
COMPLETIONS = os.path.join(mhtest.SOURCE, "completions")

# bash-completion 2.x's __load_completion: the first of $dir/CMD, $dir/CMD.bash and
# $dir/_CMD that is a file is sourced (output dropped) inside a function. Then each
# command named on the line shows its registration ("none" without one), and the
# mh-quota completion of $LINE runs.
DRIVER = r'''
load_completion() {
  local cmd=$1 compfile
  for compfile in "$cmd" "$cmd.bash" "_$cmd"; do
    compfile=$DIR/$compfile
    [[ -f $compfile ]] && . "$compfile" &>/dev/null && return 0
  done
  return 1
}
for cmd in $COMMANDS; do
  load_completion "$cmd" || echo "not loaded: $cmd"
  complete -p "$cmd" 2>/dev/null || echo "none: $cmd"
done
if [[ -n $LINE ]]; then
  PATH="$TOOL_DIR:$PATH"
  COMP_LINE=$LINE
  COMP_POINT=${#COMP_LINE}
  _mh_quota mh-quota '' '' || exit 91
  printf 'reply: %s\n' "${COMPREPLY[@]}"
fi
'''


class InstalledLayoutTest(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        self.add_domain("example.jp")
        self.add_account("taro@example.jp")
        # Installed as cmake/Packaging.cmake installs them: a tool's script by its name.
        self.installed = os.path.join(self.tmp, "share", "bash-completion", "completions")
        os.makedirs(self.installed)
        for name in os.listdir(COMPLETIONS):
            stem = name.removesuffix(".bash")
            shutil.copy(os.path.join(COMPLETIONS, name),
                        os.path.join(self.installed, stem if stem in TOOLS else name))
        self.elsewhere = os.path.join(self.tmp, "elsewhere")  # the shell's working directory
        os.mkdir(self.elsewhere)

    def load(self, directory, commands, line=""):
        env = dict(os.environ, DIR=directory, COMMANDS=" ".join(commands), LINE=line, MH_SPOOL=self.spool,
                   TOOL_DIR=os.path.dirname(mhtest.tool_path("mh-user")))
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER], capture_output=True, text=True,
                              env=env, cwd=self.elsewhere, timeout=60)
        self.assertEqual(proc.returncode, 0, proc)
        self.assertEqual(proc.stderr, "", "loading must not print errors")
        return proc.stdout.splitlines()

    def registrations(self, tools):
        return [f"complete -F _{tool.replace('-', '_')} {tool}" for tool in tools]

    def test_every_tool_loads_from_the_installed_directory(self):
        self.assertEqual(self.load(self.installed, TOOLS), self.registrations(TOOLS))

    def test_every_tool_loads_from_the_source_tree(self):
        self.assertEqual(self.load(COMPLETIONS, TOOLS), self.registrations(TOOLS))

    def test_a_loaded_script_completes_with_the_helpers(self):
        out = self.load(self.installed, ["mh-quota"], line="mh-quota show ")
        self.assertEqual(out, self.registrations(["mh-quota"]) + ["reply: example.jp", "reply: taro@example.jp"])

    def test_without_the_helper_a_script_defines_nothing(self):
        os.remove(os.path.join(self.installed, "mailhost-common.bash"))
        self.assertEqual(self.load(self.installed, ["mh-quota", "mh-user"]),
                         ["not loaded: mh-quota", "none: mh-quota", "not loaded: mh-user", "none: mh-user"])

    def test_the_helper_completes_no_command(self):
        # The only names the loader would source it for; it registers nothing even then.
        self.assertEqual(self.load(self.installed, ["mailhost-common", "mailhost-common.bash"]),
                         ["none: mailhost-common", "none: mailhost-common.bash"])

    def test_sourced_by_a_relative_path(self):
        # `source mh-user.bash` from inside the directory: BASH_SOURCE has no slash.
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                               "source mh-user.bash && complete -p mh-user"],
                              capture_output=True, text=True, cwd=COMPLETIONS, timeout=60)
        self.assertEqual((proc.returncode, proc.stdout, proc.stderr), (0, "complete -F _mh_user mh-user\n", ""))


if __name__ == "__main__":
    unittest.main()
