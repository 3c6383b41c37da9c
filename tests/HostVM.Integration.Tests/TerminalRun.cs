using System.Diagnostics;
using System.Text;

namespace HostVM.Integration.Tests;

/// <summary>
/// `hostvm run` on a pseudo-terminal, as a user's shell runs it: script(1) gives it a tty as stdin and
/// stdout (so the console is raw and the Ctrl-A escapes work). What it prints, stderr included, is
/// collected; the command line ends by printing <c>EXIT=&lt;status&gt;</c>.
/// </summary>
public sealed class TerminalRun : IDisposable
{
    private readonly Process _process;
    private readonly Thread _reader;
    private readonly StringBuilder _output = new();

    public TerminalRun(string hostvmArguments)
    {
        var info = new ProcessStartInfo("script")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        string hostvm = Path.Combine(AppContext.BaseDirectory, "hostvm.dll");
        foreach (var a in new[] { "-qec", $"dotnet {hostvm} run {hostvmArguments}; echo EXIT=$?", "/dev/null" })
        {
            info.ArgumentList.Add(a);
        }

        _process = Process.Start(info)!;
        _reader = new Thread(() =>
        {
            int c;
            while ((c = _process.StandardOutput.Read()) >= 0)
            {
                lock (_output)
                {
                    _output.Append((char)c);
                }
            }
        });
        _reader.Start();
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Waits until the terminal shows <paramref name="text"/>; false on timeout.</summary>
    public bool WaitFor(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            Thread.Sleep(50);
        }

        return true;
    }

    /// <summary>Types at the terminal.</summary>
    public void Type(string keys)
    {
        _process.StandardInput.Write(keys);
        _process.StandardInput.Flush();
    }

    /// <summary>Waits for hostvm (and script) to end; returns everything the terminal showed.</summary>
    public string WaitForExit(TimeSpan timeout)
    {
        Assert.True(_process.WaitForExit(timeout), $"hostvm did not exit within {timeout.TotalSeconds} s\n{Output}");
        _reader.Join(TimeSpan.FromSeconds(10));
        return Output;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _reader.Join(TimeSpan.FromSeconds(10));
        _process.Dispose();
    }
}
