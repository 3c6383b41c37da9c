namespace HostVM.Storage;

/// <summary>
/// A disk image cannot be used as asked: missing, malformed, locked by another VM, not writable.
/// It is an <see cref="IOException"/> so callers that already handle I/O failures handle this too;
/// the message names the file and what to do about it.
/// </summary>
public sealed class BlockDeviceException : IOException
{
    public BlockDeviceException()
    {
    }

    public BlockDeviceException(string message)
        : base(message)
    {
    }

    public BlockDeviceException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public BlockDeviceException(string message, string path, Exception? innerException = null)
        : base(message, innerException)
    {
        Path = path;
    }

    /// <summary>The image file the error is about, when there is one.</summary>
    public string? Path { get; }
}
