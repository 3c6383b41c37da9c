using System.Globalization;

namespace HostVM.Host.Metrics;

/// <summary>The host's load and memory as Linux shows them in /proc (nothing elsewhere: empty and zero).</summary>
public static class HostProc
{
    /// <summary>The 1, 5 and 15 minute load averages of /proc/loadavg.</summary>
    public static IReadOnlyList<double> LoadAverage(string path = "/proc/loadavg")
    {
        try
        {
            return [.. File.ReadAllText(path).Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(3)
                .Select(f => double.Parse(f, NumberStyles.Float, CultureInfo.InvariantCulture))];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return [];
        }
    }

    /// <summary>MemTotal and MemAvailable of /proc/meminfo, in bytes.</summary>
    public static (long Total, long Available) Memory(string path = "/proc/meminfo")
    {
        long total = 0, available = 0;
        try
        {
            foreach (string line in File.ReadLines(path))
            {
                // "MemTotal:       16318480 kB"
                string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length >= 2 && long.TryParse(fields[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out long kib))
                {
                    if (fields[0] == "MemTotal:")
                    {
                        total = kib * 1024;
                    }
                    else if (fields[0] == "MemAvailable:")
                    {
                        available = kib * 1024;
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return (total, available);
    }
}
