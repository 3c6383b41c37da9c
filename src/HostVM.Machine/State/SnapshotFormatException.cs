namespace HostVM.Machine.State;

/// <summary>A snapshot file that cannot be loaded: the message is one line naming the file, the section and what is wrong.</summary>
public sealed class SnapshotFormatException : Exception
{
    public SnapshotFormatException()
    {
    }

    public SnapshotFormatException(string message)
        : base(message)
    {
    }

    public SnapshotFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
