"""The shared error handling of the package's commands."""

import pytest

from bt_tutorial.command_line import one_line, run_command


def test_an_expected_error_is_one_line_and_exit_code_2(capsys):
    def body():
        raise FileNotFoundError("no file at\n   /data/x.hf5;   run the download first")

    assert run_command(body) == 2
    assert capsys.readouterr().err == "error: no file at /data/x.hf5; run the download first\n"
    assert run_command(lambda: 0) == 0 and run_command(lambda: 3) == 3
    assert one_line(ValueError()) == "ValueError"


def test_other_errors_keep_their_traceback_and_ctrl_c_says_how_to_resume(capsys):
    def bug():
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run_command(bug)
    with pytest.raises(TypeError):
        run_command(lambda: (_ for _ in ()).throw(TypeError("bug")), expected=(ValueError,))

    def stop():
        raise KeyboardInterrupt

    assert run_command(stop, interrupted="Interrupted; rerun to resume.") == 130
    assert capsys.readouterr().err == "Interrupted; rerun to resume.\n"
    with pytest.raises(KeyboardInterrupt):
        run_command(stop)
