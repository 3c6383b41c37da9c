using System.Globalization;
using System.Text.RegularExpressions;

namespace HostVM.Integration.Tests;

/// <summary>
/// What the host kernel says this process's hart threads (named hart0, hart1, ...) have had, from
/// /proc/self/task/*/schedstat: time on a CPU and time runnable but waiting for one, summed. It is the
/// host's own accounting, independent of what HostVM measures. Only guest tests (run one at a time)
/// use it, so the hart threads are those of the one machine under test.
/// </summary>
public readonly partial record struct HartThreadCpu(TimeSpan OnCpu, TimeSpan Waiting, int Threads)
{
    public static HartThreadCpu Sample()
    {
        long onCpu = 0, waiting = 0;
        int threads = 0;
        foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                if (!HartName().IsMatch(File.ReadAllText(Path.Combine(task, "comm")).Trim()))
                {
                    continue;
                }

                var fields = File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ');
                onCpu += long.Parse(fields[0], CultureInfo.InvariantCulture);
                waiting += long.Parse(fields[1], CultureInfo.InvariantCulture);
                threads++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // the thread ended between the listing and the read
            }
        }

        return new(TimeSpan.FromTicks(onCpu / 100), TimeSpan.FromTicks(waiting / 100), threads);
    }

    [GeneratedRegex("^hart\\d+$")]
    private static partial Regex HartName();
}
