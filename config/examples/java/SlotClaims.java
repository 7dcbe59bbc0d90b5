package com.example.jobs;

import java.util.Map;
import java.util.OptionalLong;

import org.springframework.http.HttpEntity;
import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;
import org.springframework.http.client.SimpleClientHttpRequestFactory;
import org.springframework.web.client.HttpStatusCodeException;
import org.springframework.web.client.RestClientException;
import org.springframework.web.client.RestTemplate;

import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Exactly once per slot with raft-elector's job ledger: every replica's scheduler fires, each
 * claims the slot, and only the one granted runs it.
 *
 * <pre>
 * &#64;Scheduled(cron = "0 0 * * * *")
 * public void hourly() {
 *     String slot = SlotClaims.slotOf(Instant.now().truncatedTo(ChronoUnit.HOURS));
 *     claims.claim("report", slot).ifPresent(token -&gt; runReport(token));
 * }
 * </pre>
 *
 * A grant comes back as 201 (or 200, this pod's own grant asked again); 409 means another pod
 * holds the slot; 503 means no quorum answered in time (ask again). The token grows with
 * every grant: pass it to the job to fence its writes.
 */
public class SlotClaims {

    private final String url;
    private final RestTemplate http;
    private final ObjectMapper json = new ObjectMapper();

    public SlotClaims(String url) {
        SimpleClientHttpRequestFactory factory = new SimpleClientHttpRequestFactory();
        factory.setConnectTimeout(1000);
        factory.setReadTimeout(5000);
        this.url = url;
        this.http = new RestTemplate(factory);
    }

    /** The slot key of a scheduled time: RFC 3339 in UTC, to the second. */
    public static String slotOf(java.time.Instant scheduled) {
        return scheduled.truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
    }

    /** What a claim answered: the HTTP status and the JSON body. */
    public static final class Answer {
        public final int status;
        public final Map<?, ?> body;

        Answer(int status, Map<?, ?> body) {
            this.status = status;
            this.body = body;
        }

        public boolean granted() {
            return status == 200 || status == 201;
        }
    }

    /** Claims {@code slot} of {@code job}; throws when the sidecar cannot be asked. */
    public Answer ask(String job, String slot) {
        HttpHeaders headers = new HttpHeaders();
        headers.setContentType(MediaType.APPLICATION_JSON);
        String body;
        int status;
        try {
            String request = json.writeValueAsString(Map.of("slot", slot));
            var resp = http.postForEntity(url + "/v1/jobs/{job}/claims",
                    new HttpEntity<>(request, headers), String.class, job);
            status = resp.getStatusCode().value();
            body = resp.getBody();
        } catch (HttpStatusCodeException e) {
            status = e.getRawStatusCode();
            body = e.getResponseBodyAsString();
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException(e);
        }
        try {
            return new Answer(status, json.readValue(body, Map.class));
        } catch (Exception e) {
            throw new RestClientException("not JSON: " + body, e);
        }
    }

    /** The fencing token when this pod may run the slot; empty when another holds it or no answer came. */
    public OptionalLong claim(String job, String slot) {
        try {
            Answer a = ask(job, slot);
            return a.granted() ? OptionalLong.of(((Number) a.body.get("token")).longValue()) : OptionalLong.empty();
        } catch (RestClientException e) {
            return OptionalLong.empty(); // no answer means "not mine": never run on a guess
        }
    }
}
