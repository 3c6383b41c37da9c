using System.Globalization;
using System.Runtime.InteropServices;

namespace HostVM.Host.Supervision;

/// <summary>What /proc says about a process: whether it lives, and its start time (to tell a reused pid apart).</summary>
public static partial class ProcessTable
{
    public const int SigTerm = 15;
    public const int SigKill = 9;

    /// <summary>Field 22 of /proc/PID/stat (clock ticks after boot), or null if there is no such process.</summary>
    public static long? StartTicks(int pid) => Stat(pid) is { } fields ? long.Parse(fields[19], CultureInfo.InvariantCulture) : null;

    /// <summary>True if <paramref name="pid"/> runs (not a zombie) and started at <paramref name="startTicks"/>.</summary>
    public static bool IsAlive(int pid, long startTicks) =>
        Stat(pid) is { } fields && fields[0] != "Z" && fields[0] != "X" && long.Parse(fields[19], CultureInfo.InvariantCulture) == startTicks;

    /// <summary>The command line of a process, NUL-separated arguments joined by spaces.</summary>
    public static string CommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return string.Empty;
        }
    }

    /// <summary>Resident set size in bytes (0 if gone).</summary>
    public static long ResidentBytes(int pid)
    {
        try
        {
            var fields = File.ReadAllText($"/proc/{pid}/statm").Split(' ');
            return long.Parse(fields[1], CultureInfo.InvariantCulture) * Environment.SystemPageSize;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 0;
        }
    }

    /// <summary>
    /// The first child of <paramref name="pid"/> once it has one (a jail's <c>unshare --fork</c> makes the VMM's process
    /// a moment after it starts), or null if none came within <paramref name="timeout"/> or the parent ended.
    /// </summary>
    public static int? WaitForChild(int pid, TimeSpan timeout)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            try
            {
                string children = File.ReadAllText($"/proc/{pid}/task/{pid}/children");
                if (children.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [var first, ..])
                {
                    return int.Parse(first, CultureInfo.InvariantCulture);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }

            Thread.Sleep(1);
        }

        return null;
    }

    public static void Signal(int pid, int signal) => _ = kill(pid, signal);

    /// <summary>The fields after the command name: [0] is the state, [19] the start time.</summary>
    private static string[]? Stat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        int end = text.LastIndexOf(')');
        return end < 0 ? null : text[(end + 2)..].Split(' ');
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
