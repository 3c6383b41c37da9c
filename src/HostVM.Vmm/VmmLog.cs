using System.Globalization;

namespace HostVM.Vmm;

/// <summary>
/// The VMM's own log (never stdout: that is the guest's serial console). Lines go to stderr until
/// PUT /logger names a file or named pipe.
/// </summary>
public sealed class VmmLog : IDisposable
{
    private readonly Lock _lock = new();
    private readonly string _id;
    private TextWriter _writer = Console.Error;
    private bool _ownsWriter;
    private VmmLogLevel _level = VmmLogLevel.Info;
    private bool _showLevel = true;

    public VmmLog(string id) => _id = id;

    public string? Path { get; private set; }

    public VmmLogLevel Level => _level;

    public bool ShowLevel => _showLevel;

    public void Configure(string path, VmmLogLevel level, bool showLevel)
    {
        StreamWriter writer;
        try
        {
            writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new VmmFault($"log_path {path}: cannot be opened for writing ({e.Message}).");
        }

        lock (_lock)
        {
            if (_ownsWriter)
            {
                _writer.Dispose();
            }

            _writer = writer;
            _ownsWriter = true;
            _level = level;
            _showLevel = showLevel;
            Path = path;
        }
    }

    public void Error(string message) => Write(VmmLogLevel.Error, message);

    public void Warning(string message) => Write(VmmLogLevel.Warning, message);

    public void Info(string message) => Write(VmmLogLevel.Info, message);

    public void Debug(string message) => Write(VmmLogLevel.Debug, message);

    private void Write(VmmLogLevel level, string message)
    {
        lock (_lock)
        {
            if (level > _level)
            {
                return;
            }

            string time = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
            try
            {
                _writer.WriteLine(_showLevel ? $"{time} [{_id}:{level}] {message}" : $"{time} [{_id}] {message}");
                _writer.Flush();
            }
            catch (IOException)
            {
                // The log's reader went away; the VM goes on.
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_ownsWriter)
            {
                _writer.Dispose();
                _ownsWriter = false;
            }
        }
    }
}
