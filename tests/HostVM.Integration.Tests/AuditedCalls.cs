using System.Collections.Concurrent;

namespace HostVM.Integration.Tests;

/// <summary>
/// Remembers every mutating call a test's HTTP clients made to a daemon, with its answer's status, so that
/// <see cref="DaemonUnderTest"/> can check, when the test ends, that each one is in the daemon's audit log.
/// </summary>
public sealed class AuditedCalls
{
    private readonly ConcurrentQueue<(string Method, string Path, int Status)> _calls = new();

    public IReadOnlyCollection<(string Method, string Path, int Status)> Calls => _calls;

    public HttpMessageHandler Wrap(HttpMessageHandler inner) => new Recorder(inner, this);

    private sealed class Recorder(HttpMessageHandler inner, AuditedCalls calls) : DelegatingHandler(inner)
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (request.Method != HttpMethod.Get && request.Method != HttpMethod.Head)
            {
                calls._calls.Enqueue((request.Method.Method, request.RequestUri!.PathAndQuery, (int)response.StatusCode));
            }

            return response;
        }
    }
}
