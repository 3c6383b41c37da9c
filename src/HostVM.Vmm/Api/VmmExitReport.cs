using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>
/// What <c>hostvm vmm --exit-file</c> writes when its VM ends, so a supervisor that did not start the
/// process (a restarted daemon adopting it) still learns how it ended.
/// </summary>
public sealed record VmmExitReport(
    [property: JsonPropertyName("reason")] string Reason,
    [property: JsonPropertyName("exit_code")] int ExitCode,
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("at")] DateTimeOffset At);
