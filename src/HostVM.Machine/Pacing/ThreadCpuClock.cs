using System.Runtime.InteropServices;

namespace HostVM.Machine.Pacing;

/// <summary>
/// CPU time the calling thread has used (clock_gettime(CLOCK_THREAD_CPUTIME_ID)): user plus system
/// time, nanosecond resolution, not advancing while the thread sleeps. One system call (no vDSO for
/// CPU clocks), cheap enough to read once per pacing slice; /proc would cost a file read.
/// </summary>
internal static partial class ThreadCpuClock
{
    /// <summary>CLOCK_THREAD_CPUTIME_ID: 3 on Linux, 16 on macOS.</summary>
    private static readonly int ClockId = OperatingSystem.IsMacOS() ? 16 : 3;

    public static bool IsSupported => OperatingSystem.IsLinux() || OperatingSystem.IsMacOS();

    /// <summary>The calling thread's CPU time; zero where the platform has no per-thread CPU clock.</summary>
    public static TimeSpan CurrentThread()
    {
        if (!IsSupported || ClockGetTime(ClockId, out var time) != 0)
        {
            return TimeSpan.Zero;
        }

        return TimeSpan.FromTicks((time.Seconds * TimeSpan.TicksPerSecond) + (time.Nanoseconds / 100));
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clockId, out Timespec time);

    /// <summary>struct timespec on 64-bit Linux and macOS.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}
