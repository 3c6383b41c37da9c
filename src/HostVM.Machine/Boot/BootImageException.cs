namespace HostVM.Machine.Boot;

/// <summary>
/// A boot payload (firmware, kernel, initrd) cannot be used: unreadable, malformed, the wrong kind, or it
/// does not fit in guest RAM. The message is one line that names the file and the problem.
/// </summary>
public sealed class BootImageException : Exception
{
    public BootImageException()
    {
    }

    public BootImageException(string message)
        : base(message)
    {
    }

    public BootImageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
