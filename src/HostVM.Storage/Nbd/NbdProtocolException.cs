namespace HostVM.Storage.Nbd;

/// <summary>
/// The NBD peer sent something the protocol forbids (a wrong cookie, a chunk outside the request, a bad length):
/// the connection cannot be trusted any further and is dropped. Not retried: a server that broke the protocol once
/// is not expected to do better on the same request.
/// </summary>
public sealed class NbdProtocolException : IOException
{
    public NbdProtocolException()
    {
    }

    public NbdProtocolException(string message)
        : base(message)
    {
    }

    public NbdProtocolException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
