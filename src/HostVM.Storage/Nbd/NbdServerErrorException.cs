namespace HostVM.Storage.Nbd;

/// <summary>
/// The NBD server answered a request with an error (EIO, ENOSPC, EPERM...): the connection is fine and the request
/// failed. Not retried, since the server has already decided.
/// </summary>
public sealed class NbdServerErrorException : IOException
{
    public NbdServerErrorException()
    {
    }

    public NbdServerErrorException(string message)
        : base(message)
    {
    }

    public NbdServerErrorException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public NbdServerErrorException(string message, uint error)
        : base(message)
    {
        Error = error;
    }

    /// <summary>The NBD error value (errno-like: 1 EPERM, 5 EIO, 22 EINVAL, 28 ENOSPC...).</summary>
    public uint Error { get; }
}
