using System.Runtime.InteropServices;

namespace HostVM.Cli;

/// <summary>
/// Puts the controlling terminal into raw mode for the guest console (every key, Ctrl-C included,
/// goes to the guest; nothing is echoed locally) and restores it afterwards. Uses termios directly:
/// running `stty` as a child would not stick, because .NET re-applies its own terminal settings
/// around every child process it starts.
/// </summary>
public sealed unsafe partial class TerminalMode : IDisposable
{
    private const int StdinFd = 0;
    private const int TcsaNow = 0;
    // Larger than struct termios on every Linux ABI; treated as opaque bytes.
    private const int TermiosSize = 256;

    private readonly byte[]? _saved;

    private TerminalMode(byte[]? saved)
    {
        _saved = saved;
    }

    public static TerminalMode EnterRaw()
    {
        if (Console.IsInputRedirected || !OperatingSystem.IsLinux())
        {
            return new TerminalMode(null);
        }

        var saved = new byte[TermiosSize];
        var raw = new byte[TermiosSize];
        fixed (byte* s = saved)
        fixed (byte* r = raw)
        {
            if (TcGetAttr(StdinFd, s) != 0 || TcGetAttr(StdinFd, r) != 0)
            {
                return new TerminalMode(null);
            }

            CfMakeRaw(r);
            if (TcSetAttr(StdinFd, TcsaNow, r) != 0)
            {
                return new TerminalMode(null);
            }
        }

        return new TerminalMode(saved);
    }

    public void Dispose()
    {
        if (_saved is not null)
        {
            fixed (byte* s = _saved)
            {
                _ = TcSetAttr(StdinFd, TcsaNow, s);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "tcgetattr")]
    private static partial int TcGetAttr(int fd, byte* termios);

    [LibraryImport("libc", EntryPoint = "tcsetattr")]
    private static partial int TcSetAttr(int fd, int optionalActions, byte* termios);

    [LibraryImport("libc", EntryPoint = "cfmakeraw")]
    private static partial void CfMakeRaw(byte* termios);
}
