using System.Text;
using System.Text.Json;
using HostVM.Vmm.Api;

namespace HostVM.Vmm;

/// <summary>
/// PUT /metrics: one JSON line of <see cref="VmmStatistics"/> (with a timestamp) appended to a file or
/// named pipe every minute and on each FlushMetrics action, as Firecracker's metrics system does.
/// </summary>
public sealed class MetricsWriter : IDisposable
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(60);

    private readonly Stream _output;
    private readonly Func<VmmStatistics> _read;
    private readonly Timer _timer;
    private readonly Lock _lock = new();

    private MetricsWriter(string path, Stream output, Func<VmmStatistics> read)
    {
        Path = path;
        _output = output;
        _read = read;
        _timer = new Timer(_ => Flush(), null, Period, Period);
    }

    public string Path { get; }

    public static MetricsWriter Open(string path, Func<VmmStatistics> read)
    {
        try
        {
            return new MetricsWriter(path, new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite), read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new VmmFault($"metrics_path {path}: cannot be opened for writing ({e.Message}).");
        }
    }

    /// <summary>Writes one line now.</summary>
    public void Flush()
    {
        var stats = JsonSerializer.Serialize(_read(), VmmJsonContext.Default.VmmStatistics);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var line = Encoding.UTF8.GetBytes($"{{\"utc_timestamp_ms\":{now},{stats[1..]}\n");
        lock (_lock)
        {
            try
            {
                _output.Write(line);
                _output.Flush();
            }
            catch (IOException)
            {
                // The reader of the pipe went away; the VM goes on.
            }
        }
    }

    public void Dispose()
    {
        _timer.Dispose();
        _output.Dispose();
    }
}
