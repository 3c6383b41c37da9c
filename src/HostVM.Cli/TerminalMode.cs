using System.Diagnostics;

namespace HostVM.Cli;

/// <summary>Puts a TTY into raw mode for the guest console and restores it afterwards (with stty).</summary>
public sealed class TerminalMode : IDisposable
{
    private readonly string? _saved;

    private TerminalMode(string? saved)
    {
        _saved = saved;
    }

    public static TerminalMode EnterRaw()
    {
        if (Console.IsInputRedirected)
        {
            return new TerminalMode(null);
        }

        string? saved = Stty("-g");
        if (saved is null)
        {
            return new TerminalMode(null);
        }

        Stty("raw -echo");
        return new TerminalMode(saved.Trim());
    }

    public void Dispose()
    {
        if (_saved is not null)
        {
            Stty(_saved);
        }
    }

    private static string? Stty(string arguments)
    {
        try
        {
            var info = new ProcessStartInfo("stty")
            {
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            foreach (var a in arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                info.ArgumentList.Add(a);
            }

            // stty works on its standard input, which it inherits: our terminal.
            using var p = Process.Start(info);
            if (p is null)
            {
                return null;
            }

            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
